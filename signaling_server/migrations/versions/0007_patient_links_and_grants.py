"""patient links and access grants: possible matches, registrar decisions, grants, expert assignments

Each site's identifier now keeps the demographics that site sent (filled from the identity for rows made
before); a linked identity is kept (`merged_into_id`) so that unlinking restores it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_FK_MERGED = "fk_patients_merged_into_id_patients"


def _stamp(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=32), sa.ForeignKey("users.id"), nullable=True)


def upgrade() -> None:
    op.create_table(
        "site_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("site_id", sa.String(length=32), sa.ForeignKey("sites.id"), nullable=False),
        _user("created_by_id"),
        _stamp("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "site_id"),
    )
    with op.batch_alter_table("site_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_site_assignments_user_id"), ["user_id"], unique=False)

    op.create_table(
        "access_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _user("grantee_user_id"),
        sa.Column("grantee_site_id", sa.String(length=32), sa.ForeignKey("sites.id"), nullable=True),
        _stamp("valid_from"),
        _stamp("valid_until", nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        _user("created_by_id"),
        _stamp("created_at"),
        _stamp("revoked_at", nullable=True),
        _user("revoked_by_id"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grants_grantee_site_id"), ["grantee_site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_grants_grantee_user_id"), ["grantee_user_id"], unique=False)

    op.create_table(
        "access_grant_objects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("grant_id", sa.String(length=32), sa.ForeignKey("access_grants.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_grant_objects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grant_objects_grant_id"), ["grant_id"], unique=False)

    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_patients_birth_date"), ["birth_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_patients_merged_into_id"), ["merged_into_id"], unique=False)
        batch_op.create_foreign_key(_FK_MERGED, "patients", ["merged_into_id"], ["id"])

    with op.batch_alter_table("patient_identifiers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("birth_date", sa.String(length=8), server_default="", nullable=False))
        batch_op.add_column(sa.Column("sex", sa.String(length=1), server_default="", nullable=False))
    for column in ("name", "birth_date", "sex"):  # rows made before: what the identity says
        op.execute(
            f"UPDATE patient_identifiers SET {column} = "
            f"(SELECT patients.{column} FROM patients WHERE patients.id = patient_identifiers.patient_id)"
        )

    op.create_table(
        "patient_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kept_id", sa.String(length=32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("merged_id", sa.String(length=32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        _user("by_user_id"),
        _stamp("at"),
        sa.Column("state", sa.String(length=16), nullable=False),
        _user("unlinked_by_id"),
        _stamp("unlinked_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patient_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_links_kept_id"), ["kept_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_links_merged_id"), ["merged_id"], unique=False)

    op.create_table(
        "patient_matches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("candidate_id", sa.String(length=32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _stamp("created_at"),
        _user("decided_by_id"),
        _stamp("decided_at", nullable=True),
        sa.Column("link_id", sa.String(length=32), sa.ForeignKey("patient_links.id"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "candidate_id"),
    )
    with op.batch_alter_table("patient_matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_matches_candidate_id"), ["candidate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_matches_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_matches_state"), ["state"], unique=False)

    op.create_table(
        "patient_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=32), sa.ForeignKey("patients.id"), nullable=False),
        _stamp("at"),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _user("user_id"),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patient_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_events_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    for table in ("patient_events", "patient_matches", "patient_links", "access_grant_objects", "access_grants"):
        op.drop_table(table)
    op.drop_table("site_assignments")
    with op.batch_alter_table("patient_identifiers", schema=None) as batch_op:
        for column in ("sex", "birth_date", "name"):
            batch_op.drop_column(column)
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_constraint(_FK_MERGED, type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_patients_merged_into_id"))
        batch_op.drop_index(batch_op.f("ix_patients_birth_date"))
        batch_op.drop_column("merged_into_id")
