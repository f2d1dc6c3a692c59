"""A change notice: which topic changed, and the keys that decide who may hear of it (never patient data).

A notice tells a console page that its list may be stale; the page then asks its own permission-checked REST
question again. What goes to the browser is only `{"topic", "version"}` (PROTOCOL.md §6), and for `consultations`
the ids of the changed consultations when the listener sees them through a site it serves (`ids_told_to`), so that
the page asks for those rows alone. What stays on the
server is what the access policy needs to decide whether the listener could see the changed thing: its site, and
the consultation, study and patient ids grants may open. People named in `user_ids` hear it whatever their scope
(an invited observer, whose grant is newer than the scope their stream holds).

Topics, and who hears them (signaling_server/access/policy.py decides; the same rule as the page's REST call):

    consultations   a consultation was requested, taken (live), ended or cancelled, or someone joined or left
                    its room: heard by those who see the consultation in full (its site in scope, or a grant)
    queue           a study arrived or changed (priority, lock, patient link), or one of its reports did: heard by
                    those who see the study, de-identified included (trainers)
    findings        a critical finding was flagged, acknowledged or escalated: heard by those who see its study
                    in full
    duty            the on-duty roster changed (duty/routes.py): heard by everyone signed in (it names staff, never
                    patients); `user_ids` names the expert whose shift it was, `site_id` is empty
    orders          an order was placed, cancelled, matched by images (in progress) or completed by an approved
                    report, or a report of its study changed: heard by those who see the order (its ordering
                    site in scope: that site's people, the experts who serve it)

A new topic (issue 12's reports ready, returned reports, order states) is a name here, its rule in `heard_by`,
and the `changed(...)` calls where its data changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from signaling_server.access import policy
from signaling_server.access.policy import Scope, Sight
from signaling_server.db.models import Consultation, CriticalFinding, Order, Study

CONSULTATIONS = "consultations"
QUEUE = "queue"
FINDINGS = "findings"
DUTY = "duty"
ORDERS = "orders"
TOPICS = (CONSULTATIONS, QUEUE, FINDINGS, DUTY, ORDERS)


@dataclass(frozen=True)
class Change:
    topic: str
    site_id: str
    consultation_id: str | None = None
    study_id: str | None = None
    patient_id: str | None = None
    user_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ValueError(f"unknown topic {self.topic!r}")

    def encode(self) -> str:
        """For the relay between server processes (never sent to a browser)."""
        fields: dict[str, Any] = {"topic": self.topic, "site_id": self.site_id}
        for key in ("consultation_id", "study_id", "patient_id"):
            if getattr(self, key) is not None:
                fields[key] = getattr(self, key)
        if self.user_ids:
            fields["user_ids"] = sorted(self.user_ids)
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Change:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("site_id"), str):
            raise ValueError("a change needs a topic and a site_id")
        optional = {k: data[k] for k in ("consultation_id", "study_id", "patient_id") if isinstance(data.get(k), str)}
        users = data.get("user_ids", [])
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise ValueError("user_ids must be a list of ids")
        return cls(str(data.get("topic")), data["site_id"], **optional, user_ids=frozenset(users))


def of_consultation(consultation: Consultation, *also: str | None) -> Change:
    """A consultation changed; `also`: people who hear it whatever their scope (e.g. the one just invited)."""
    return Change(
        CONSULTATIONS, consultation.site_id, consultation_id=consultation.id, user_ids=frozenset(u for u in also if u)
    )


def of_study(study: Study, topic: str = QUEUE) -> Change:
    return Change(topic, study.site_id, study_id=study.id, patient_id=study.patient_id)


def of_finding(finding: CriticalFinding, study: Study | None = None) -> Change:
    """A critical finding changed (its study, when at hand, adds the patient a grant may open)."""
    patient_id = study.patient_id if study is not None else None
    return Change(FINDINGS, finding.site_id, study_id=finding.study_id, patient_id=patient_id)


def of_order(order: Order) -> Change:
    return of_order_keys(order.site_id, order.patient_id)


def of_order_keys(site_id: str, patient_id: str | None) -> Change:
    """An order of `site_id` changed (the notice names no order: the page asks for its list again)."""
    return Change(ORDERS, site_id, patient_id=patient_id)


class Subject:
    """The changed thing as the access policy knows it: transient rows made from the notice's keys, once per
    notice, so that every listener is judged by policy.py's own functions."""

    def __init__(self, change: Change) -> None:
        self.change = change
        self._consultation = Consultation(id=change.consultation_id or "", site_id=change.site_id, device_id="")
        self._study = Study(id=change.study_id or "", site_id=change.site_id, patient_id=change.patient_id)
        self._order = Order(site_id=change.site_id)

    def heard_by(self, scope: Scope) -> bool:
        change = self.change
        if scope.user_id is not None and scope.user_id in change.user_ids:
            return True
        if change.topic == DUTY:
            return True
        if change.topic == CONSULTATIONS:
            return policy.consultation_sight(scope, self._consultation) == Sight.FULL
        if change.topic == ORDERS:
            return policy.order_sight(scope, self._order) == Sight.FULL
        least = Sight.DEIDENTIFIED if change.topic == QUEUE else Sight.FULL
        return policy.study_sight(scope, self._study) >= least

    def ids_told_to(self, scope: Scope) -> bool:
        """Whether a listener who hears this change may be told the consultation's id: when it names them (just
        invited), or when they see it through a site they serve (a change of the sites they serve rescopes their
        stream at once, hub.py). Sight through a grant is told by topic alone, as every notice was before: a
        revoked or expired grant is noticed only at the stream's next scope."""
        change = self.change
        if change.topic != CONSULTATIONS or change.consultation_id is None:
            return False
        return (scope.user_id is not None and scope.user_id in change.user_ids) or change.site_id in scope.sites
