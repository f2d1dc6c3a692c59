"""site kind and targets: what each site is in the district (community centre, regional centre, partner hospital)
and its own turnaround targets laid over the server's (null: the server's)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="community", nullable=False))
        batch_op.add_column(sa.Column("turnaround", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("turnaround")
        batch_op.drop_column("kind")
