"""recordings reviews and qc

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 07:55:16.105753
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "qc_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consultation_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qc_results_consultation_id"), ["consultation_id"], unique=False)

    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("consultation_id", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("sonographer_id", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sonographer_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consultation_id"),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordings_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_sonographer_id"), ["sonographer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_state"), ["state"], unique=False)

    op.create_table(
        "recording_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id", "name"),
    )
    with op.batch_alter_table("recording_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_files_recording_id"), ["recording_id"], unique=False)

    op.create_table(
        "trainer_reviews",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("recording_id", sa.String(length=32), nullable=False),
        sa.Column("trainer_id", sa.String(length=32), nullable=False),
        sa.Column("sonographer_id", sa.String(length=32), nullable=True),
        sa.Column("osaus", sa.JSON(), nullable=False),
        sa.Column("image_quality", sa.JSON(), nullable=False),
        sa.Column("comments", sa.JSON(), nullable=False),
        sa.Column("score", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sonographer_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["trainer_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id", "trainer_id"),
    )
    with op.batch_alter_table("trainer_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trainer_reviews_recording_id"), ["recording_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trainer_reviews_sonographer_id"), ["sonographer_id"], unique=False)

    op.create_table(
        "peer_reviews",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("reader_id", sa.String(length=32), nullable=False),
        sa.Column("reviewer_id", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("significance", sa.String(length=1), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "reviewer_id"),
    )
    with op.batch_alter_table("peer_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_peer_reviews_reader_id"), ["reader_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_peer_reviews_report_id"), ["report_id"], unique=False)

    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording_enabled", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:

    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("recording_enabled")

    with op.batch_alter_table("peer_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_peer_reviews_report_id"))
        batch_op.drop_index(batch_op.f("ix_peer_reviews_reader_id"))

    op.drop_table("peer_reviews")
    with op.batch_alter_table("trainer_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trainer_reviews_sonographer_id"))
        batch_op.drop_index(batch_op.f("ix_trainer_reviews_recording_id"))

    op.drop_table("trainer_reviews")
    with op.batch_alter_table("recording_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_files_recording_id"))

    op.drop_table("recording_files")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recordings_state"))
        batch_op.drop_index(batch_op.f("ix_recordings_sonographer_id"))
        batch_op.drop_index(batch_op.f("ix_recordings_site_id"))

    op.drop_table("recordings")
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_results_consultation_id"))

    op.drop_table("qc_results")
