"""DICOM peers: AE title, source networks, TLS client certificate, site and size limits

Each site's `ae_title` becomes one enabled peer of that site, and the column goes. The calling AE title alone
used to be the whole check, from any address: the peers made here keep working from anywhere
(`0.0.0.0/0` and `::/0`) until an admin narrows their networks (the listener warns about each at start), with a
256 MiB dataset limit and at most 4 associations at once. Downgrading gives each site the AE title of its oldest
peer back and forgets the rest (networks, certificates, limits, other peers).

Revision ID: 0008
Revises: 0007
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ANYWHERE = ["0.0.0.0/0", "::/0"]
MAX_DATASET_BYTES = 256 << 20
MAX_ASSOCIATIONS = 4


def upgrade() -> None:
    peers = op.create_table(
        "dicom_peers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ae_title", sa.String(length=16), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("networks", sa.JSON(), nullable=False),
        sa.Column("tls_client_sha256", sa.String(length=64), nullable=True),
        sa.Column("tls_client_subject", sa.String(length=400), nullable=True),
        sa.Column("max_dataset_bytes", sa.BigInteger(), nullable=False),
        sa.Column("max_associations", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ae_title"),
    )
    with op.batch_alter_table("dicom_peers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dicom_peers_site_id"), ["site_id"], unique=False)

    sites = op.get_bind().execute(sa.text("SELECT id, ae_title FROM sites WHERE ae_title IS NOT NULL")).all()
    now = datetime.now(UTC)
    op.bulk_insert(
        peers,
        [
            {
                "id": uuid.uuid4().hex,
                "ae_title": ae_title,
                "site_id": site_id,
                "networks": ANYWHERE,
                "tls_client_sha256": None,
                "tls_client_subject": None,
                "max_dataset_bytes": MAX_DATASET_BYTES,
                "max_associations": MAX_ASSOCIATIONS,
                "enabled": True,
                "created_at": now,
            }
            for site_id, ae_title in sites
        ],
    )
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("ae_title")


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ae_title", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint("sites_ae_title_key", ["ae_title"])
    bind = op.get_bind()
    oldest: dict[str, str] = {}
    for site_id, ae_title in bind.execute(
        sa.text("SELECT site_id, ae_title FROM dicom_peers ORDER BY created_at, id")
    ).all():
        oldest.setdefault(site_id, ae_title)
    for site_id, ae_title in oldest.items():
        bind.execute(sa.text("UPDATE sites SET ae_title = :ae WHERE id = :site"), {"ae": ae_title, "site": site_id})

    with op.batch_alter_table("dicom_peers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dicom_peers_site_id"))

    op.drop_table("dicom_peers")
