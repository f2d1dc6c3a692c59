"""Typed, thin ORM models. Business rules live in the services, not here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    recording_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # what the site is in the district (admin.SITE_KINDS) and its own reading targets over the server's (issue 12)
    kind: Mapped[str] = mapped_column(String(16), default="community", server_default="community")
    turnaround: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # thyroid nodule scoring (issue 12): "acr_tirads" or "c_tirads" (reports/tirads.py ThyroidSystem)
    thyroid_system: Mapped[str] = mapped_column(String(16), default="acr_tirads", server_default="acr_tirads")
    # the header of its printed reports (issue 12, results/header.py): address, phone, logo (PNG or JPEG, capped)
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(40), default="", server_default="")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(String(16))


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # accounts (issue 10): a forced password change, the TOTP second factor (confirmed, and pending enrolment)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_pending_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # the last time step used: a code works once
    # issue 12: the console's language the person chose ("zh-CN" or "en"); null: their browser's choice
    language: Mapped[str | None] = mapped_column(String(8))


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(128))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(128))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # accounts (issue 10): every token expires; "read" tokens may only GET
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scope: Mapped[str] = mapped_column(String(8), default="write", server_default="write")
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # accounts (issue 10): what a person sees in their list of sessions
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class Consultation(Base):
    __tablename__ = "consultations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    state: Mapped[str] = mapped_column(String(16), index=True)
    exam_type: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    patient_name: Mapped[str] = mapped_column(String(200))
    patient_sex: Mapped[str] = mapped_column(String(1))
    patient_birth_date: Mapped[str] = mapped_column(String(10))
    accession: Mapped[str] = mapped_column(String(16))
    study_uid: Mapped[str | None] = mapped_column(String(64), unique=True)
    requested_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    expert_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsultationEvent(Base):
    """The audit trail of a consultation: state changes, who joined and left."""

    __tablename__ = "consultation_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sender_role: Mapped[str] = mapped_column(String(16))
    sender_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    sender_name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


# --- DICOM index and the regional reading queue -------------------------------------------------


class Patient(Base):
    """One regional identity; each site's own patient ID maps to it through `PatientIdentifier`."""

    __tablename__ = "patients"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[str] = mapped_column(String(8), index=True)
    sex: Mapped[str] = mapped_column(String(1))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # set while this identity is linked into another (a `PatientLink`); unlinking clears it
    merged_into_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)


class PatientIdentifier(Base):
    __tablename__ = "patient_identifiers"
    __table_args__ = (UniqueConstraint("site_id", "local_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    local_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the demographics this site sent with this ID (a site is shown its own, never another site's)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    birth_date: Mapped[str] = mapped_column(String(8), default="", server_default="")
    sex: Mapped[str] = mapped_column(String(1), default="", server_default="")


class Study(Base):
    """A study and its place in the reading queue (state, priority, turnaround clock, lock)."""

    __tablename__ = "studies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)
    local_patient_id: Mapped[str] = mapped_column(String(64))
    patient_name: Mapped[str] = mapped_column(String(200))
    accession: Mapped[str] = mapped_column(String(16), index=True)
    modality: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200), default="")
    study_date: Mapped[str] = mapped_column(String(8), default="")
    study_time: Mapped[str] = mapped_column(String(16), default="")
    consultation_id: Mapped[str | None] = mapped_column(ForeignKey("consultations.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[str] = mapped_column(String(8))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    examined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_holder_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    lock_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)


class Series(Base):
    __tablename__ = "series"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    series_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16))
    number: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200), default="")


class Instance(Base):
    """One stored DICOM object; its bytes live in the content-addressed store under `sha256`."""

    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sop_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    series_id: Mapped[str] = mapped_column(ForeignKey("series.id"), index=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    number: Mapped[int | None] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer, default=1)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    received_via: Mapped[str] = mapped_column(String(16))
    calling_ae: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StudyEvent(Base):
    """The audit trail of a study: state changes, claims and releases, reports, findings."""

    __tablename__ = "study_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Report(Base):
    """One version of a study's report. An addendum is a new row pointing at the version it amends."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("study_id", "version"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approver_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    amends_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"))
    sr_sop_uid: Mapped[str | None] = mapped_column(String(64))


class CriticalFinding(Base):
    """The six documented fields of a communicated critical result, plus its escalation clock."""

    __tablename__ = "critical_findings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    finding: Mapped[str] = mapped_column(Text)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reported_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(32))
    notified_person: Mapped[str | None] = mapped_column(String(200))
    acknowledged_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class ForwardJob(Base):
    """One instance waiting to be sent to the regional PACS by C-STORE, retried until it is accepted."""

    __tablename__ = "forward_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), index=True)
    destination: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a server is working it (outbox.Claims)


# --- session recordings, trainer review, QC ----------------------------------------------------------------------


class Recording(Base):
    """One consultation's recording: the MP4 and the timeline, uploaded in chunks by the edge."""

    __tablename__ = "recordings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id"), unique=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    sonographer_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    qc_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a server is scoring it (quality/scorer.py)


class RecordingFile(Base):
    """One file of a recording (media.mp4, timeline.jsonl), received in order, checked by SHA-256."""

    __tablename__ = "recording_files"
    __table_args__ = (UniqueConstraint("recording_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    chunks: Mapped[int] = mapped_column(Integer, default=0)


class TrainerReview(Base):
    """A trainer's scoring of one recorded session: OSAUS, the five image-quality items, pinned comments."""

    __tablename__ = "trainer_reviews"
    __table_args__ = (UniqueConstraint("recording_id", "trainer_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    trainer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    sonographer_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    osaus: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    image_quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    score: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QcResult(Base):
    """QC of a session (live summary from the edge, or offline scoring of its recording)."""

    __tablename__ = "qc_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[str] = mapped_column(ForeignKey("consultations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PeerReview(Base):
    """RADPEER-style peer review of an approved report by another reader (CLINICAL.md §4)."""

    __tablename__ = "peer_reviews"
    __table_args__ = (UniqueConstraint("report_id", "reviewer_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), index=True)
    reader_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    score: Mapped[int] = mapped_column(Integer)
    significance: Mapped[str | None] = mapped_column(String(1))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- accounts: sign-in, passwords, tokens, second factor (issue 10) ---------------------------------------------


# --- the audit trail (issue 10) ---------------------------------------------------------------------------------


class AuditEvent(Base):
    """One read or change of patient data, append-only and chained to the row before it by SHA-256.

    Who (`actor_*`, `site_id`, `client`), when, what (`action`, `method` + `route`, `object_*`, the study and the
    regional patient it concerns, `detail`) and the result (`status`, `outcome`). No foreign keys: a row outlives
    anything it names. `row_hash` = SHA-256(`prev_hash` + canonical JSON of the other fields) (audit/chain.py); the
    application only ever inserts (a trigger refuses UPDATE and DELETE, migration 0006).
    """

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    actor_name: Mapped[str | None] = mapped_column(String(200))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(String(32))
    client: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(200))
    object_kind: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(128))
    study_id: Mapped[str | None] = mapped_column(String(32), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(32), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)


# --- patient links, access grants, expert assignments (issue 10) ------------------------------------------------


class SiteAssignment(Base):
    """A user (expert, admin, registrar) serves a site: they see its patients (signaling_server/access/)."""

    __tablename__ = "site_assignments"
    __table_args__ = (UniqueConstraint("user_id", "site_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccessGrant(Base):
    """An explicit opening of named objects to a user or a site, from `valid_from` until `valid_until`.

    kind: consultation | referral | shared_report. `valid_until` is empty only for a consultation's grant while
    the consultation is open; ending it closes the grant.
    """

    __tablename__ = "access_grants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    grantee_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    grantee_site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class AccessGrantObject(Base):
    """One object a grant opens: kind patient | study | report | consultation, and its id."""

    __tablename__ = "access_grant_objects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("access_grants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[str] = mapped_column(String(32))


class PatientLink(Base):
    """Identity `merged_id` linked into `kept_id`; `moved` records what moved so that unlinking restores it."""

    __tablename__ = "patient_links"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kept_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    merged_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"identifiers": [ids], "studies": [ids]}
    by_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(16))  # linked | unlinked
    unlinked_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    unlinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PatientMatch(Base):
    """A possible match of two identities for a registrar to confirm (link) or reject (kept apart for good)."""

    __tablename__ = "patient_matches"
    __table_args__ = (UniqueConstraint("patient_id", "candidate_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    candidate_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # regional_id | look_alike
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | confirmed | rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    link_id: Mapped[str | None] = mapped_column(ForeignKey("patient_links.id"))


class PatientEvent(Base):
    """The audit trail of a regional identity: possible matches, links, unlinks, rejections."""

    __tablename__ = "patient_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- DICOM peers (issue 10) -------------------------------------------------------------------------------------


class DicomPeer(Base):
    """A modality or gateway that may send objects by C-STORE into one site: its calling AE title, the networks it
    may connect from, the TLS client certificate it must present (pinned by the SHA-256 of its DER encoding) and
    its limits. The rules that use it live in `dicomstore/peers.py`."""

    __tablename__ = "dicom_peers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    tls_client_sha256: Mapped[str | None] = mapped_column(String(64))
    tls_client_subject: Mapped[str | None] = mapped_column(String(400))
    max_dataset_bytes: Mapped[int] = mapped_column(BigInteger)
    max_associations: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- report archiving: the SR outbox (issue 10) -----------------------------------------------------------------


class ReportArchiveJob(Base):
    """An approved report's DICOM SR waiting to be stored; the report stays `archiving` until then (archiver.py).

    The SR's UIDs are chosen at approval, so every attempt stores the same SR instance (and finds it if an earlier
    attempt stored it before failing to say so)."""

    __tablename__ = "report_archive_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), unique=True)
    sop_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a server is working it (outbox.Claims)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- the on-duty roster: who is alerted to live requests (issue 12) --------------------------------------------


class DutyShift(Base):
    """An expert on duty from `starts_at` until `ends_at`: alerted (browser notification and sound) to the live
    requests of the sites they serve (signaling_server/duty/roster.py)."""

    __tablename__ = "duty_shifts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- the images chosen for a report (issue 12) -------------------------------------------------------------------


class ReportImage(Base):
    """One image a reader chose for a report version (printed with it, referenced by its SR), in `position` order."""

    __tablename__ = "report_images"
    __table_args__ = (UniqueConstraint("report_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    sop_uid: Mapped[str] = mapped_column(String(64))
    frame: Mapped[int] = mapped_column(Integer, default=1)


# --- orders and the modality worklist (issue 12) ----------------------------------------------------------------


class Order(Base):
    """An exam a community site orders at the regional centre (开单): one requested procedure with one scheduled
    procedure step, served on the modality worklist until its images arrive. The rules live in `orders/`."""

    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    accession: Mapped[str] = mapped_column(String(16), unique=True)  # never reused, cancelled or not
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)  # the ordering site, where it is done
    ordered_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)  # the regional identity
    local_patient_id: Mapped[str] = mapped_column(String(64))
    patient_name: Mapped[str] = mapped_column(String(200))  # DICOM PN, as the site wrote it
    patient_birth_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(1), default="")
    modality: Mapped[str] = mapped_column(String(16))
    body_part: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(String(64))  # RequestedProcedureDescription
    reason: Mapped[str] = mapped_column(Text, default="")
    clinical_info: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(8))
    station_ae: Mapped[str | None] = mapped_column(String(16))  # None: any modality of the site
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True)  # given to the modality on the worklist
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # images arrived
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its report approved
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    study_id: Mapped[str | None] = mapped_column(ForeignKey("studies.id"), index=True)
    report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"))


class OrderEvent(Base):
    """The trail of an order: placed, its state changes, the images that matched it, the report that completed it."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
