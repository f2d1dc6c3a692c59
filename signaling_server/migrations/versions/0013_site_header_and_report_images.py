"""site header and report images: what a printed report shows of its site, and the images chosen for a report

`sites.address`, `sites.phone` (empty at first), `sites.logo` (PNG or JPEG bytes, capped by the application at
`results/header.py` MAX_LOGO_BYTES) with its media type `sites.logo_type`; `report_images`: the images (SOP
Instance UID and frame) a reader chose for one report version, in order.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=300), server_default="", nullable=False))
        batch_op.add_column(sa.Column("phone", sa.String(length=40), server_default="", nullable=False))
        batch_op.add_column(sa.Column("logo", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("logo_type", sa.String(length=16), nullable=True))
    op.create_table(
        "report_images",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sop_uid", sa.String(length=64), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "position"),
    )
    with op.batch_alter_table("report_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_images_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_images_report_id"))
    op.drop_table("report_images")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        for column in ("logo_type", "logo", "phone", "address"):
            batch_op.drop_column(column)
