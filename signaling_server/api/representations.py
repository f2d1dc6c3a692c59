"""JSON representations of the domain objects (the shapes PROTOCOL.md §1 documents)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from signaling_server.consultations.service import ConsultationView
from signaling_server.db.models import ApiToken, ChatMessage, Device, Site, User, WebSession
from signaling_server.signaling.messages import Peer


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "role": user.role,
        "site_id": user.site_id,
        "active": user.active,
        "must_change_password": user.must_change_password,
        "totp": user.totp_secret is not None,
        "language": user.language,
    }


def token_json(token: ApiToken, now: datetime) -> dict[str, Any]:
    """An API token as its owner and admins see it: never its secret (shown once, when made)."""
    return {
        "id": token.id,
        "label": token.label,
        "scope": token.scope,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "expires_at": iso(token.expires_at),
        "expired": token.expires_at <= now,
        "revoked": token.revoked,
    }


def session_json(session: WebSession, current_id: str | None = None) -> dict[str, Any]:
    return {
        "id": session.id,
        "created_at": iso(session.created_at),
        "last_seen_at": iso(session.last_seen_at),
        "expires_at": iso(session.expires_at),
        "address": session.address,
        "user_agent": session.user_agent,
        "current": session.id == current_id,
    }


def site_json(site: Site, ae_titles: list[str] | None = None) -> dict[str, Any]:
    """A site; `ae_titles` (its DICOM peers' calling AE titles) only when given, which is only to admins."""
    shown = {
        "id": site.id,
        "code": site.code,
        "name": site.name,
        "recording_enabled": site.recording_enabled,
        "kind": site.kind,
        "turnaround": site.turnaround or {},
        "thyroid_system": site.thyroid_system,
    }
    return shown if ae_titles is None else {**shown, "ae_titles": ae_titles}


def device_json(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "site_id": device.site_id,
        "name": device.name,
        "revoked": device.revoked,
        "created_at": iso(device.created_at),
        "last_seen_at": iso(device.last_seen_at),
    }


def consultation_json(view: ConsultationView, participants: list[dict[str, Any]]) -> dict[str, Any]:
    c = view.consultation
    end = c.started_at or c.ended_at or datetime.now(UTC)
    return {
        "id": c.id,
        "state": c.state,
        "exam_type": c.exam_type,
        "site": {"id": view.site.id, "code": view.site.code, "name": view.site.name},
        "device_id": c.device_id,
        "patient": {
            "id": c.patient_id,
            "name": c.patient_name,
            "sex": c.patient_sex,
            "birth_date": c.patient_birth_date,
        },
        "accession": c.accession,
        "study_uid": c.study_uid,
        "requested_by": {"id": view.requested_by.id, "name": view.requested_by.name},
        "expert": {"id": view.expert.id, "name": view.expert.name} if view.expert else None,
        "requested_at": iso(c.requested_at),
        "started_at": iso(c.started_at),
        "ended_at": iso(c.ended_at),
        "waiting_seconds": max(0, round((end - c.requested_at).total_seconds())),
        "participants": participants,
        # The site's policy: the edge records the live session when true, and every page shows that it does.
        "recording": view.site.recording_enabled,
    }


def chat_json(message: ChatMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "from": message.sender_user_id,
        "name": message.sender_name,
        "role": message.sender_role,
        "text": message.text,
        "at": iso(message.at),
    }


def peer_json(peer: Peer) -> dict[str, Any]:
    return {
        "id": peer.id,
        "role": peer.role,
        "name": peer.name,
        "user_id": peer.user_id,
        "device_id": peer.device_id,
    }
