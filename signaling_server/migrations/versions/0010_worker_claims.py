"""worker claims: the column in which a server claims a due job, so that several servers work each job once

`forward_jobs.claimed_until` and `report_archive_jobs.claimed_until` (the forwarder claimed by moving
`next_attempt_at`; it now claims here, as the archiver does), and `recordings.qc_claimed_until` for the QC scorer
(`outbox.Claims`, docs/SERVERS.md). All are empty at first: nothing is claimed.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("forward_jobs", "claimed_until"),
    ("report_archive_jobs", "claimed_until"),
    ("recordings", "qc_claimed_until"),
)


def upgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table, column in reversed(_COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
