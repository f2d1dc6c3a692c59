"""report archive jobs: the outbox that stores an approved report's SR before the report is final

Reports the old approval left final without their SR (the SR store failed after the report was committed final)
go back to `archiving` with a job of their own, so the archiver stores their SR too. The downgrade drops the jobs
and calls every archiving report final again (the old code had no other state for them).

Revision ID: 0009
Revises: 0008
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _uid() -> str:
    """A DICOM UID from a UUID (PS3.5 B.2): no pydicom in a migration."""
    return f"2.25.{uuid.uuid4().int}"


def upgrade() -> None:
    jobs = op.create_table(
        "report_archive_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("sop_uid", sa.String(length=64), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id"),
    )
    with op.batch_alter_table("report_archive_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_archive_jobs_state"), ["state"], unique=False)

    reports = sa.table(
        "reports", sa.column("id", sa.String), sa.column("state", sa.String), sa.column("sr_sop_uid", sa.String)
    )
    connection = op.get_bind()
    stranded = (
        connection.execute(sa.select(reports.c.id).where(reports.c.state == "final", reports.c.sr_sop_uid.is_(None)))
        .scalars()
        .all()
    )
    now = datetime.now(UTC)
    for report_id in stranded:
        connection.execute(reports.update().where(reports.c.id == report_id).values(state="archiving"))
        connection.execute(
            jobs.insert().values(
                report_id=report_id,
                sop_uid=_uid(),
                series_uid=_uid(),
                state="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )


def downgrade() -> None:
    reports = sa.table("reports", sa.column("state", sa.String))
    op.execute(reports.update().where(reports.c.state == "archiving").values(state="final"))
    with op.batch_alter_table("report_archive_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_archive_jobs_state"))
    op.drop_table("report_archive_jobs")
