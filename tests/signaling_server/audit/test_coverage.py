"""Every route of the app is classified, once: audited (as what) or not (and why). A new route that nobody
classified fails here; until then it is audited all the same."""

from __future__ import annotations

from signaling_server.app import create_app
from signaling_server.audit.coverage import AUDITED, KINDS_WITHOUT_PATIENT, NOT_AUDITED, Rule, rule_for
from signaling_server.audit.subjects import PATIENT_KINDS
from signaling_server.audit.trail import READ_ACTIONS
from signaling_server.settings import Settings

ACTIONS = READ_ACTIONS | {"write", "store"}


def _routes() -> set[tuple[str, str]]:
    app = create_app(Settings())
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None  # HEAD is GET's twin
    }


def test_every_route_is_classified_exactly_once() -> None:
    routes = _routes()
    unclassified = sorted(routes - AUDITED.keys() - NOT_AUDITED.keys())
    assert unclassified == [], f"classify these in signaling_server/audit/coverage.py: {unclassified}"
    assert AUDITED.keys() & NOT_AUDITED.keys() == set()
    assert sorted((AUDITED.keys() | NOT_AUDITED.keys()) - routes) == [], "routes that are gone"


def test_each_rule_names_a_path_part_an_action_and_a_kind_that_leads_to_a_patient() -> None:
    for (method, pattern), rule in AUDITED.items():
        assert rule.key is None or "{" + rule.key + "}" in pattern, (method, pattern)
        assert rule.action in ACTIONS, (method, pattern)
        assert (rule.kind in PATIENT_KINDS) != (rule.kind in KINDS_WITHOUT_PATIENT), (method, pattern)
        assert (rule.action in READ_ACTIONS) == (method == "GET"), (method, pattern)  # reads are GETs, GETs read
    assert all(reason for reason in NOT_AUDITED.values())


def test_an_unclassified_route_is_audited_and_head_is_get() -> None:
    assert rule_for("GET", "/api/v1/something-new/{id}") == Rule("unclassified", None, "read")
    assert rule_for("DELETE", "/api/v1/something-new/{id}") == Rule("unclassified", None, "write")
    assert rule_for("HEAD", "/api/v1/reports/{id}") == rule_for("GET", "/api/v1/reports/{id}")
    assert rule_for("GET", "/api/v1/auth/me") is None
