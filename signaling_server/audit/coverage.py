"""Which routes leave an audit row, and what each row says the route did: one table for the whole server.

Every route of the app is in exactly one of the two tables below, by method and pattern: `AUDITED` (what kind of
object its path names, which part of the path is that object's id, and the action) or `NOT_AUDITED` (with the
reason). tests/signaling_server/audit/test_coverage.py checks the tables against `app.router`, so a new route that
is in neither fails the suite until someone decides; at run time such a route is audited all the same.

Audited: every route that reads or changes patient data (demographics, consultations and their chat, studies and
their images, reports, critical findings, recordings, trainer reviews, teaching material), the changes to who may
act (sites, people, devices), and the audit trail's own pages. Not audited: signing in and the caller's own
account, configuration, the directory of sites, people and devices, aggregates that name no patient or encounter,
the console's static files, and two routes an edge device polls (its work list, every second; the offset of an
upload it resumes).

Actions: `read`, `search` (a list or a query: its parameters are kept), `join` (the signaling WebSocket: the
live session and its chat history), `print`, `export` (a copy leaves the server), `write`, `store` (STOW-RS; C-STORE
is audited by the DICOM listener), `send` (the forwarder's C-STORE to the regional PACS), `associate` (an
association the DICOM listener rejected: audit/rejections.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    kind: str  # the kind of object the path names (subjects.py finds its study and patient)
    key: str | None  # the path part holding its id; None: a collection (a POST's answer names the new object)
    action: str


# Kinds of object that lead to no patient (subjects.py resolves the others to a study and a patient).
KINDS_WITHOUT_PATIENT = frozenset(
    {"teaching_export", "site", "user", "device", "session", "token", "dicom_peer", "forward_job", "audit"}
    | {"assignment", "grant", "patient_match", "patient_link", "unclassified", "duty_shift"}
)


def _rules(kind: str, key: str | None, action: str, *routes: str) -> dict[tuple[str, str], Rule]:
    return {(method, pattern): Rule(kind, key, action) for method, _, pattern in (r.partition(" ") for r in routes)}


_DW = "/dicomweb/studies"
_DW_SERIES = _DW + "/{study}/series/{series}"
_DW_INSTANCE = _DW_SERIES + "/instances/{instance}"

AUDITED: dict[tuple[str, str], Rule] = {
    # the on-duty roster: who is alerted to live requests
    **_rules("duty_shift", None, "write", "POST /api/v1/duty"),
    **_rules("duty_shift", "id", "write", "DELETE /api/v1/duty/{id}"),
    # consultations, their chat and the live session
    **_rules("consultation", None, "write", "POST /api/v1/consultations"),
    **_rules("consultation", None, "search", "GET /api/v1/consultations"),
    **_rules("consultation", "id", "read", "GET /api/v1/consultations/{id}", "GET /api/v1/consultations/{id}/chat"),
    **_rules("consultation", "id", "join", "GET /api/v1/consultations/{id}/signal"),
    **_rules(
        "consultation",
        "id",
        "write",
        "POST /api/v1/consultations/{id}/end",
        "POST /api/v1/consultations/{id}/cancel",
        "POST /api/v1/consultations/{id}/captures",
    ),
    # the reading queue, critical findings, reports and their peer review
    **_rules("study", None, "search", "GET /api/v1/studies"),
    **_rules("study", None, "write", "POST /api/v1/studies"),
    **_rules(
        "study",
        "id",
        "read",
        "GET /api/v1/studies/{id}",
        "GET /api/v1/studies/{id}/findings",
        "GET /api/v1/studies/{id}/reports",
    ),
    **_rules(
        "study",
        "id",
        "write",
        "POST /api/v1/studies/{id}/priority",
        "POST /api/v1/studies/{id}/claim",
        "POST /api/v1/studies/{id}/release",
        "POST /api/v1/studies/{id}/findings",
        "POST /api/v1/studies/{id}/reports",
    ),
    **_rules("finding", None, "search", "GET /api/v1/findings"),
    **_rules("finding", "id", "write", "POST /api/v1/findings/{id}/acknowledge"),
    **_rules("report", "id", "read", "GET /api/v1/reports/{id}", "GET /api/v1/reports/{id}/peer-reviews"),
    **_rules(
        "report",
        "id",
        "print",
        "GET /api/v1/reports/{id}/print",
        "GET /api/v1/reports/{id}/pdf",
        "GET /api/v1/reports/{id}/printed.html",
    ),
    **_rules("report", "id", "read", "GET /api/v1/reports/{id}/images"),
    **_rules("report", "id", "write", "PUT /api/v1/reports/{id}/images"),
    # results back to the community (issue 12): its exams, their images as a download
    **_rules("study", None, "search", "GET /api/v1/results"),
    **_rules("study", "id", "export", "GET /api/v1/studies/{id}/dicom.zip", "GET /api/v1/studies/{id}/jpeg.zip"),
    **_rules(
        "report",
        "id",
        "write",
        "PUT /api/v1/reports/{id}",
        "POST /api/v1/reports/{id}/sign",
        "POST /api/v1/reports/{id}/approve",
        "POST /api/v1/reports/{id}/addenda",
        "POST /api/v1/reports/{id}/peer-reviews",
    ),
    **_rules("report", None, "search", "GET /api/v1/peer-reviews/sample"),
    # orders (the worklist's C-FIND is audited by the DICOM listener)
    **_rules("order", None, "write", "POST /api/v1/orders"),
    **_rules("order", None, "search", "GET /api/v1/orders"),
    **_rules("order", "id", "read", "GET /api/v1/orders/{id}"),
    **_rules("order", "id", "write", "POST /api/v1/orders/{id}/cancel"),
    # patients
    **_rules("patient", "id", "read", "GET /api/v1/patients/{id}", "GET /api/v1/patients/{id}/studies"),
    **_rules("patient", "id", "write", "POST /api/v1/patients/{id}/link"),
    # DICOMweb
    **_rules("study_uid", None, "store", f"POST {_DW}"),
    **_rules("study_uid", "study", "store", f"POST {_DW}/{{study}}"),
    **_rules("study_uid", None, "search", f"GET {_DW}"),
    **_rules("study_uid", "study", "search", f"GET {_DW}/{{study}}/series", f"GET {_DW}/{{study}}/instances"),
    **_rules("series_uid", "series", "search", f"GET {_DW_SERIES}/instances"),
    **_rules("study_uid", "study", "read", f"GET {_DW}/{{study}}", f"GET {_DW}/{{study}}/metadata"),
    **_rules("series_uid", "series", "read", f"GET {_DW_SERIES}", f"GET {_DW_SERIES}/metadata"),
    **_rules(
        "instance",
        "instance",
        "read",
        f"GET {_DW_INSTANCE}",
        f"GET {_DW_INSTANCE}/metadata",
        f"GET {_DW_INSTANCE}/rendered",
        f"GET {_DW_INSTANCE}/frames/{{frame}}/rendered",
    ),
    # recordings, their review and QC, teaching material
    **_rules("recording", None, "write", "POST /api/v1/recordings"),
    **_rules("recording", None, "search", "GET /api/v1/recordings", "GET /api/v1/reviews", "GET /api/v1/qc/dashboard"),
    **_rules(
        "recording",
        "id",
        "read",
        "GET /api/v1/recordings/{id}",
        "GET /api/v1/recordings/{id}/media",
        "GET /api/v1/recordings/{id}/timeline",
        "GET /api/v1/recordings/{id}/qc",
        "GET /api/v1/recordings/{id}/reviews",
        "GET /api/v1/recordings/{id}/review",
    ),
    **_rules(
        "recording",
        "id",
        "write",
        "PUT /api/v1/recordings/{id}/files/{name}",
        "POST /api/v1/recordings/{id}/files/{name}/complete",
        "POST /api/v1/recordings/{id}/end",
        "POST /api/v1/recordings/{id}/fail",
        "PUT /api/v1/recordings/{id}/review",
        "POST /api/v1/recordings/{id}/teaching-export",
    ),
    **_rules("teaching_export", "id", "read", "GET /api/v1/teaching-exports/{id}"),
    **_rules("teaching_export", "id", "export", "GET /api/v1/teaching-exports/{id}/files/{name}"),
    **_rules("instance", "sop_uid", "export", "GET /api/v1/teaching/instances/{sop_uid}"),
    # who may act: sites, people, devices
    **_rules("site", None, "write", "POST /api/v1/sites"),
    **_rules("site", "id", "write", "POST /api/v1/sites/{id}/recording", "POST /api/v1/sites/{id}/thyroid-system"),
    **_rules("site", "id", "write", "POST /api/v1/sites/{id}/kind", "POST /api/v1/sites/{id}/turnaround"),
    **_rules("site", "id", "write", "PUT /api/v1/sites/{id}/header", "PUT /api/v1/sites/{id}/logo"),
    **_rules("site", "id", "write", "DELETE /api/v1/sites/{id}/logo"),
    **_rules("user", None, "write", "POST /api/v1/users"),
    **_rules("device", None, "write", "POST /api/v1/devices"),
    **_rules("device", "id", "write", "POST /api/v1/devices/{id}/rotate", "POST /api/v1/devices/{id}/revoke"),
    **_rules(
        "user",
        "id",
        "write",
        "PATCH /api/v1/users/{id}",
        "POST /api/v1/users/{id}/disable",
        "POST /api/v1/users/{id}/enable",
        "POST /api/v1/users/{id}/reset-password",
        "POST /api/v1/users/{id}/totp/remove",
    ),
    **_rules("user", None, "write", "PATCH /api/v1/auth/me"),  # the caller's own language (issue 12)
    **_rules("session", "id", "write", "POST /api/v1/sessions/{id}/revoke"),
    **_rules("token", "id", "write", "POST /api/v1/tokens/{id}/revoke"),
    # who may see which patient data: site assignments, access grants, invitations to a consultation
    **_rules("user", "id", "write", "POST /api/v1/users/{id}/sites", "DELETE /api/v1/users/{id}/sites/{site_id}"),
    **_rules("assignment", None, "search", "GET /api/v1/assignments"),
    **_rules("grant", None, "search", "GET /api/v1/grants"),
    **_rules("user", None, "search", "GET /api/v1/users/lookup"),  # the words typed are kept (detail.query)
    **_rules("grant", None, "write", "POST /api/v1/grants"),
    **_rules("grant", "id", "write", "POST /api/v1/grants/{id}/revoke"),
    **_rules("consultation", "id", "write", "POST /api/v1/consultations/{id}/observers"),
    # the registrar's decisions on patient identities: possible matches and links
    **_rules("patient_match", None, "search", "GET /api/v1/patient-matches"),
    **_rules(
        "patient_match",
        "id",
        "write",
        "POST /api/v1/patient-matches/{id}/confirm",
        "POST /api/v1/patient-matches/{id}/reject",
    ),
    **_rules("patient_link", None, "search", "GET /api/v1/patient-links"),
    **_rules("patient_link", "id", "write", "POST /api/v1/patient-links/{id}/unlink"),
    # DICOM peers and the forward jobs to the PACS (a job names an instance)
    **_rules("dicom_peer", None, "write", "POST /api/v1/dicom-peers"),
    **_rules(
        "dicom_peer",
        "id",
        "write",
        "POST /api/v1/dicom-peers/{id}",
        "POST /api/v1/dicom-peers/{id}/disable",
        "POST /api/v1/dicom-peers/{id}/enable",
    ),
    **_rules("forward_job", None, "search", "GET /api/v1/forward-jobs"),
    **_rules("forward_job", None, "write", "POST /api/v1/forward-jobs/requeue"),
    **_rules("forward_job", "id", "write", "POST /api/v1/forward-jobs/{id}/requeue"),
    # the audit trail itself
    **_rules("audit", None, "search", "GET /api/v1/audit"),
    **_rules("audit", None, "export", "GET /api/v1/audit.csv"),
}

NOT_AUDITED: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/login"): "signing in: no patient data",
    ("POST", "/api/v1/auth/logout"): "signing out: no patient data",
    ("GET", "/api/v1/auth/me"): "the caller's own account",
    ("POST", "/api/v1/auth/tokens"): "the caller's own API token",
    ("GET", "/api/v1/config"): "the ICE servers and a TURN credential for the caller (no patient data)",
    ("GET", "/api/v1/sites"): "the directory of sites",
    ("GET", "/api/v1/duty"): "the on-duty roster: staff and times, no patient data",
    ("GET", "/api/v1/duty/now"): "who is on duty now: staff, no patient data",
    ("GET", "/api/v1/i18n/{language}"): "the console's message catalogs",
    ("GET", "/api/v1/sites/{id}/header"): "the directory of sites: a site's name, address, phone",
    ("GET", "/api/v1/sites/{id}/logo"): "the directory of sites: a site's logo",
    ("GET", "/api/v1/users"): "the directory of people",
    ("GET", "/api/v1/devices"): "the directory of edge devices",
    ("GET", "/api/v1/devices/me"): "the device's own record",
    ("GET", "/api/v1/auth/sessions"): "the caller's own sessions",
    ("GET", "/api/v1/auth/tokens"): "the caller's own API tokens",
    ("POST", "/api/v1/auth/password"): "the caller's own password",
    ("POST", "/api/v1/auth/totp"): "the caller's own second factor",
    ("POST", "/api/v1/auth/totp/confirm"): "the caller's own second factor",
    ("POST", "/api/v1/auth/totp/remove"): "the caller's own second factor",
    ("GET", "/api/v1/users/{id}/sessions"): "the directory of people: a person's sessions",
    ("GET", "/api/v1/users/{id}/tokens"): "the directory of people: a person's API tokens",
    ("GET", "/api/v1/dicom-peers"): "the directory of DICOM peers",
    ("GET", "/api/v1/dicom-peers/{id}"): "the directory of DICOM peers",
    ("GET", "/api/v1/devices/me/consultations"): (
        "the edge's work list, polled every second by each device; what a device then does with a consultation "
        "(joining its session, storing images, uploading the recording) is audited"
    ),
    ("GET", "/api/v1/recordings/{id}/files/{name}"): (
        "the size and offset of a recording file, asked by the edge to resume its upload: no content"
    ),
    ("GET", "/api/v1/events"): (
        "change notices (a topic, a counter, and the ids of changed consultations the listener sees through a "
        "site it serves): no patient data; the page's refetch that follows is audited"
    ),
    ("POST", "/api/v1/reports/preview"): "renders the form in the request; reads and stores nothing",
    ("GET", "/api/v1/peer-reviews/summary"): "counts per reader: no patient, study or report",
    ("GET", "/api/v1/reviews/scheme"): "the review form's items",
    ("GET", "/"): "the console's page",
    ("GET", "/static"): "the console's files",
}


def rule_for(method: str, pattern: str) -> Rule | None:
    """The rule of a route (HEAD as GET); None for a route not audited. An unclassified route is audited as a read
    (GET) or a write of an object of kind "unclassified", and its path parts are kept."""
    method = "GET" if method == "HEAD" else method
    rule = AUDITED.get((method, pattern))
    if rule is not None:
        return rule
    if (method, pattern) in NOT_AUDITED:
        return None
    return Rule("unclassified", None, "read" if method == "GET" else "write")
