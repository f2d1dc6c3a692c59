"""site thyroid system: each site chooses its thyroid nodule scoring system (ACR TI-RADS or C-TIRADS, issue 12)

`sites.thyroid_system` is "acr_tirads" for every existing site (the system reports used until now) and by default.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("thyroid_system", sa.String(length=16), nullable=False, server_default="acr_tirads")
        )


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("thyroid_system")
