"""byte counts 64-bit: recording file sizes and offsets, DICOM instance sizes

A recording segment or an instance of 2 GiB or more no longer overflows PostgreSQL's 32-bit INTEGER (SQLite's
INTEGER was always 64-bit; batch mode rebuilds its tables with the new type all the same).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = {"recording_files": ("size", "received"), "instances": ("size",)}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger())


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer())
