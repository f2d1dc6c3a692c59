"""Auditing every HTTP request to an audited route (coverage.py), in two hooks of the app.

- `middleware` (outermost: it sees the status and stable code the error middleware answered) appends the row
  after the handler ran and before the answer's headers are sent;
- `before_headers` (`on_response_prepare`) appends it for the two handlers that send their own headers: the
  signaling WebSocket (the row is the join, status 101) and WADO-RS's streamed multipart.

A read of patient data (coverage.py's read, search, join, print and export) is answered only once its row is
committed: when the trail cannot be written the caller gets 503 `audit_unavailable` and nothing else. A change
was made before its row could be written, so its answer stands and the failure is logged as an error.

Who: the signed-in user or device (a request refused before its caller was known: `anonymous`); from where: the
peer address; what: the route's pattern, the kind and id of the object its path names (a POST to a collection: the
`id` of its answer), the other path parts and the query (a QIDO's search terms); the result: the HTTP status and
"ok" or the stable error code. A handler can say more with `note` (STOW-RS names the study it stored into).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from signaling_server import errors
from signaling_server.audit.coverage import Rule, rule_for
from signaling_server.audit.trail import ANONYMOUS, AUDIT_TRAIL, READ_ACTIONS, Actor, Entry
from signaling_server.auth.identity import caller

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_RULE = web.RequestKey("audit_rule", Rule)
_SETTLED = web.RequestKey("audit_settled", bool)  # the row is written, or the request was refused for want of it
_NOTES: web.RequestKey[dict[str, Any]] = web.RequestKey("audit_notes")
_MAX_QUERY_KEYS, _MAX_VALUE = 32, 256
CANCELLED = 499  # the request ended before it was answered (the status nginx logs for it)


def note(request: web.Request, **facts: Any) -> None:
    """Add to the row of this request: `object_kind`, `object_id`, `study_id`, `patient_id` replace what the route
    says; anything else goes into the row's detail (plain JSON values)."""
    request.setdefault(_NOTES, {}).update(facts)


def _rule(request: web.Request) -> Rule | None:
    resource = request.match_info.route.resource
    return rule_for(request.method, resource.canonical) if resource is not None else None


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = _rule(request)
    if rule is None:
        return await handler(request)
    request[_RULE] = rule
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if not request.get(_SETTLED):
            await _append_or_log(request, rule, exc.status, f"http_{exc.status}", None)
        raise
    except asyncio.CancelledError:
        if not request.get(_SETTLED):
            request.app[AUDIT_TRAIL].submit(await _entry(request, rule, CANCELLED, "cancelled", None))
        raise
    if request.get(_SETTLED):
        return response
    appended = await _append_or_log(request, rule, response.status, _outcome(response), response)
    if not appended and rule.action in READ_ACTIONS:
        refusal = errors.AuditUnavailable("this read of patient data cannot be audited just now: try again later")
        return web.json_response(refusal.as_json(), status=refusal.status)
    return response


async def before_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the row of a response its handler sends itself, before its first byte leaves.

    When the row cannot be written it raises AuditUnavailable: a WebSocket is then refused with a 503; a streamed
    body has already set up its framing on the connection (chunked), so no clean answer can follow on it, and the
    connection is closed instead, before anything was sent."""
    rule = request.get(_RULE)
    if rule is None or request.get(_SETTLED):
        return
    entry = await _entry(request, rule, response.status, "ok" if response.status < 400 else f"http_{response.status}")
    try:
        await request.app[AUDIT_TRAIL].append(entry)
    except errors.AuditUnavailable:
        if not isinstance(response, web.WebSocketResponse) and request.transport is not None:
            request.transport.close()
        raise
    request[_SETTLED] = True


async def _append_or_log(
    request: web.Request, rule: Rule, status: int, outcome: str, response: web.StreamResponse | None
) -> bool:
    request[_SETTLED] = True
    entry = await _entry(request, rule, status, outcome, response)
    try:
        await request.app[AUDIT_TRAIL].append(entry)
    except errors.AuditUnavailable:
        log.error("no audit row for %s %s (%s, %s)", request.method, entry.route, entry.action, outcome)
        return False
    return True


async def _entry(
    request: web.Request, rule: Rule, status: int, outcome: str, response: web.StreamResponse | None = None
) -> Entry:
    match = request.match_info
    object_id = match.get(rule.key) if rule.key else None
    if object_id is None and request.method == "POST" and response is not None and status < 400:
        object_id = _answered_id(response)
    detail: dict[str, Any] = {}
    path = {name: value for name, value in match.items() if name != rule.key}
    if path:
        detail["path"] = path
    if request.query:
        detail["query"] = _query(request.query)
    notes = dict(request.get(_NOTES, {}))
    fixed = {name: notes.pop(name, None) for name in ("object_kind", "object_id", "study_id", "patient_id")}
    detail.update(notes)
    resource = match.route.resource
    return Entry(
        actor=await _actor(request),
        client=request.remote,
        action=rule.action,
        method=request.method,
        route=resource.canonical if resource is not None else request.path,
        status=status,
        outcome=outcome,
        object_kind=fixed["object_kind"] or rule.kind,
        object_id=fixed["object_id"] or object_id,
        study_id=fixed["study_id"],
        patient_id=fixed["patient_id"],
        detail=detail,
    )


async def _actor(request: web.Request) -> Actor:
    try:
        who = await caller(request)  # resolved once per request already, unless it was refused
    except errors.TeleusError:
        return ANONYMOUS
    if who.user is not None:
        user = who.user
        return Actor("user", user.id, user.username, user.role, user.site_id)
    if who.device is not None:
        device = who.device
        return Actor("device", device.id, device.name, "edge", device.site_id)
    return ANONYMOUS


def _outcome(response: web.StreamResponse) -> str:
    """ "ok", or the stable code of the error the answer carries ({"error": code, …})."""
    if response.status < 400:
        return "ok"
    body = _json_body(response)
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code else f"http_{response.status}"


def _answered_id(response: web.StreamResponse) -> str | None:
    body = _json_body(response)
    found = body.get("id") if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


def _json_body(response: web.StreamResponse) -> Any:
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    raw = response.body
    if not isinstance(raw, bytes | bytearray) or len(raw) > 1 << 20:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _query(query: MultiMapping[str]) -> dict[str, str | list[str]]:
    """The query as JSON: one value, or the list of a repeated key; keys and values cut to a sane length."""
    kept: dict[str, str | list[str]] = {}
    for key in list(dict.fromkeys(query.keys()))[:_MAX_QUERY_KEYS]:
        values = [value[:_MAX_VALUE] for value in query.getall(key)][:_MAX_QUERY_KEYS]
        kept[key[:_MAX_VALUE]] = values[0] if len(values) == 1 else values
    return kept
