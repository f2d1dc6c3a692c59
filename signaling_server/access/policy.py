"""The one place each patient-data resource's access is decided, from who asks and what they hold.

A caller's `Scope` is computed once per decision from their role, their own site (sonographers), the sites they
serve (`assignments.py`) and the grants valid at the request's moment (`grants.py`). Then, per resource:

    study           FULL when its site is in scope, or a grant opens it or its patient; trainers see every other
                    study DEIDENTIFIED (no name, patient ID or birth date; no images but the de-identified still)
    report          as its study; a shared_report grant opens the report alone (read, print)
    patient         the identifiers and demographics of the sites in scope only; every site's with a grant on
                    the patient; registrars read every identity (they keep the regional index), not its studies
    consultation    its site in scope, or a grant opens it (the expert who took it, invited observers); the edge
                    device that streams it reads it, but never its chat history
    recording       as its consultation; its sonographer; trainers every recording (the JSON holds no patient
                    data); the edge device that uploads it reads its upload state only
    order           its ordering site in scope (that site's doctors and sonographers, the experts who serve it);
                    no grant opens an order, and trainers see none

Devices read nothing else. Admins administer (accounts, sites, devices, assignments, grants) and see patients
only through an assignment or a grant, like everyone else. Lists use the `*_clause` SQL conditions, single
objects the `*_sight` functions: the two are the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import assignments, grants
from signaling_server.access.grants import Opened
from signaling_server.auth.identity import SITE_ROLES, Caller
from signaling_server.db.models import Consultation, Order, PatientIdentifier, Recording, Report, Site, Study

STORING_ROLES = ("admin", "expert", "sonographer")


class Sight(IntEnum):
    """How much of a patient's data a caller sees."""

    NONE = 0
    DEIDENTIFIED = 1
    FULL = 2


@dataclass(frozen=True)
class Scope:
    caller: Caller
    sites: frozenset[str]  # sites whose patients the caller sees identified
    opened: Opened  # what their grants open now
    deidentified_everywhere: bool = False  # trainers
    registry: bool = False  # registrars: every identity's demographics and identifiers

    @property
    def at(self) -> datetime:
        return self.caller.at

    @property
    def user_id(self) -> str | None:
        return self.caller.user.id if self.caller.user else None


async def scope_of(db: AsyncSession, caller: Caller) -> Scope:
    """What `caller` may see now. Devices get an empty scope (their own consultation is decided apart)."""
    if caller.device is not None:
        return Scope(caller, frozenset(), Opened())
    user = caller.require_user()
    sites = set(await assignments.sites_of(db, user.id)) if user.role in assignments.ASSIGNABLE_ROLES else set()
    if user.role in SITE_ROLES and user.site_id:
        sites.add(user.site_id)
    grantee_sites = sites | ({user.site_id} if user.site_id else set())
    opened = await grants.opened_to(db, user.id, grantee_sites, caller.at)
    return Scope(caller, frozenset(sites), opened, user.role == "trainer", user.role == "registrar")


# --- studies and reports ------------------------------------------------------------------------------------------


def study_sight(scope: Scope, study: Study) -> Sight:
    if (
        study.site_id in scope.sites
        or study.id in scope.opened.studies
        or (study.patient_id is not None and study.patient_id in scope.opened.patients)
    ):
        return Sight.FULL
    return Sight.DEIDENTIFIED if scope.deidentified_everywhere else Sight.NONE


def study_clause(scope: Scope, *, least: Sight = Sight.DEIDENTIFIED) -> ColumnElement[bool]:
    """The studies a list may show the caller with at least `least` sight (a row's own sight: `study_sight`)."""
    if least == Sight.DEIDENTIFIED and scope.deidentified_everywhere:
        return true()
    conditions = [Study.site_id.in_(scope.sites)] if scope.sites else []
    if scope.opened.studies:
        conditions.append(Study.id.in_(scope.opened.studies))
    if scope.opened.patients:
        conditions.append(Study.patient_id.in_(scope.opened.patients))
    return or_(*conditions) if conditions else false()


def report_sight(scope: Scope, report: Report, study: Study) -> Sight:
    if report.id in scope.opened.reports:
        return Sight.FULL
    return study_sight(scope, study)


# --- patients -----------------------------------------------------------------------------------------------------


def patient_sites(scope: Scope, patient_id: str, identifiers: list[PatientIdentifier]) -> frozenset[str] | None:
    """The sites whose identifiers and demographics of this identity the caller is shown (None: every site's);
    NotFound when none."""
    if scope.registry or patient_id in scope.opened.patients:
        return None
    mine = frozenset(row.site_id for row in identifiers if row.site_id in scope.sites)
    if not mine:
        raise errors.NotFound("no such patient")
    return mine


# --- consultations, their chat, recordings ------------------------------------------------------------------------


def consultation_sight(scope: Scope, consultation: Consultation) -> Sight:
    caller = scope.caller
    if caller.device is not None:
        return Sight.FULL if consultation.device_id == caller.device.id else Sight.NONE
    if consultation.site_id in scope.sites or consultation.id in scope.opened.consultations:
        return Sight.FULL
    return Sight.NONE


def consultation_clause(scope: Scope) -> ColumnElement[bool]:
    caller = scope.caller
    if caller.device is not None:
        return Consultation.device_id == caller.device.id
    conditions = [Consultation.site_id.in_(scope.sites)] if scope.sites else []
    if scope.opened.consultations:
        conditions.append(Consultation.id.in_(scope.opened.consultations))
    return or_(*conditions) if conditions else false()


def may_read_chat(scope: Scope, consultation: Consultation) -> bool:
    """The chat history is for the people in the consultation, never for the edge device that streams it."""
    return scope.caller.device is None and consultation_sight(scope, consultation) == Sight.FULL


def recording_sight(scope: Scope, recording: Recording, consultation: Consultation) -> Sight:
    """A device is told its own recording's upload state through `device_owns`, not here."""
    user = scope.caller.user
    if user is None:
        return Sight.NONE
    if user.role in SITE_ROLES:
        return Sight.FULL if recording.sonographer_id == user.id else Sight.NONE
    if recording.site_id in scope.sites or consultation.id in scope.opened.consultations:
        return Sight.FULL
    return Sight.DEIDENTIFIED if scope.deidentified_everywhere else Sight.NONE


def recording_clause(scope: Scope) -> ColumnElement[bool]:
    user = scope.caller.user
    if user is None:
        return false()
    if user.role in SITE_ROLES:
        return Recording.sonographer_id == user.id
    if scope.deidentified_everywhere:
        return true()
    conditions = [Recording.site_id.in_(scope.sites)] if scope.sites else []
    if scope.opened.consultations:
        conditions.append(Recording.consultation_id.in_(scope.opened.consultations))
    return or_(*conditions) if conditions else false()


def device_owns(caller: Caller, consultation: Consultation) -> bool:
    return caller.device is not None and consultation.device_id == caller.device.id


# --- orders (signaling_server/orders/) ------------------------------------------------------------------------


def order_sight(scope: Scope, order: Order) -> Sight:
    return Sight.FULL if scope.caller.user is not None and order.site_id in scope.sites else Sight.NONE


def order_clause(scope: Scope) -> ColumnElement[bool]:
    if scope.caller.user is None or not scope.sites:
        return false()
    return Order.site_id.in_(scope.sites)


# --- storing ------------------------------------------------------------------------------------------------------


async def storing_site(db: AsyncSession, who: Caller, asked: str | None) -> str:
    """The site id `who` stores DICOM objects into, given the `?site=` they asked for (id or code).

    An edge device stores into its own site only; a sonographer into their own site; an expert or admin into the
    site they name (storing shows them nothing: reading is decided above). Raises Forbidden or InvalidRequest.
    """
    wanted = await _site(db, asked) if asked else None
    if who.device is not None:
        if wanted is not None and wanted.id != who.device.site_id:
            raise errors.Forbidden("an edge device stores into its own site only")
        return who.device.site_id
    user = who.require_user(*STORING_ROLES)
    if wanted is None:
        if user.site_id is None:
            raise errors.InvalidRequest("say which site the objects come from: ?site=<site id or code>")
        return user.site_id
    if user.role == "sonographer" and wanted.id != user.site_id:
        raise errors.Forbidden("a sonographer stores into their own site only")
    return wanted.id


async def _site(db: AsyncSession, id_or_code: str) -> Site:
    site = await db.scalar(select(Site).where(or_(Site.id == id_or_code, Site.code == id_or_code)))
    if site is None:
        raise errors.InvalidRequest(f"no site {id_or_code!r}")
    return site
