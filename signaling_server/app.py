"""The application factory: one `create_app(settings)`, resources in cleanup contexts, errors mapped once."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from expert_console import STATIC_DIR
from qc.score import parse_weights
from recordings.errors import RecordingsError
from recordings.private_files import private_dir
from signaling_server import caching, errors
from signaling_server.access import routes as access_routes
from signaling_server.api import account_routes, admin_routes, consultation_routes
from signaling_server.appkeys import CLOCK, DB, ENGINE, QC_WEIGHTS, SETTINGS
from signaling_server.audit import middleware as audit_hooks
from signaling_server.audit import routes as audit_routes
from signaling_server.audit import trail as audit_trail
from signaling_server.auth import credential_routes
from signaling_server.auth import routes as auth_routes
from signaling_server.auth.hashing import hashing_pool
from signaling_server.auth.throttle import THROTTLE, login_throttle
from signaling_server.cluster import CLUSTER, cluster
from signaling_server.consultations import doorbell
from signaling_server.db.engine import make_engine, make_sessionmaker
from signaling_server.db.migrate import upgrade
from signaling_server.dicomstore import blobs as dicom_blobs
from signaling_server.dicomstore import dicomweb, forward, forward_routes, ingest, patient_routes, peer_routes, scp
from signaling_server.duty import routes as duty_routes
from signaling_server.events import hub as change_notices
from signaling_server.events import stream as event_stream
from signaling_server.findings import escalation as finding_escalation
from signaling_server.findings import routes as finding_routes
from signaling_server.localization import routes as localization_routes
from signaling_server.localization.catalogs import CATALOGS, Catalogs
from signaling_server.orders import routes as order_routes
from signaling_server.quality import scorer as recording_scoring
from signaling_server.reading import routes as reading_routes
from signaling_server.reading import site_targets
from signaling_server.reading.targets import TARGETS, Targets
from signaling_server.reports import archiver as report_archiving
from signaling_server.reports import peer_routes as report_peer_routes
from signaling_server.reports import routes as report_routes
from signaling_server.reports import site_routes as report_site_routes
from signaling_server.results import header_routes as site_header_routes
from signaling_server.results import routes as result_routes
from signaling_server.session_recordings import review_copies
from signaling_server.session_recordings import routes as recording_routes
from signaling_server.settings import Settings
from signaling_server.signaling.credential_watch import credential_watch
from signaling_server.signaling.handler import signal
from signaling_server.signaling.limits import SIGNAL_LIMITS, SignalLimits, shared_limits
from signaling_server.signaling.redis_rooms import RedisRoomRegistry
from signaling_server.signaling.rooms import ROOMS, RoomRegistry
from signaling_server.training import review_routes as recording_review_routes
from signaling_server.training import teaching_exports
from signaling_server.training import teaching_routes as recording_teaching_routes

log = logging.getLogger(__name__)

_HSTS = "max-age=31536000"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'"
)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except errors.TeleusError as exc:
        response = web.json_response(exc.as_json(), status=exc.status, headers=exc.headers)
    except RecordingsError as exc:
        mapped = errors.from_recordings(exc)
        return web.json_response(mapped.as_json(), status=mapped.status)
    except web.HTTPRequestEntityTooLarge:
        return web.json_response(errors.TooLarge("the body is too large").as_json(), status=413)
    except web.HTTPNotFound:
        return web.json_response(errors.NotFound("no such resource").as_json(), status=404)
    except web.HTTPMethodNotAllowed as exc:
        return web.json_response({"error": "method_not_allowed", "message": str(exc)}, status=405)
    except web.HTTPException:
        raise
    except Exception:
        if request.writer.output_size > 0:  # the answer has begun (an upgraded WebSocket): no HTTP answer may follow
            raise  # aiohttp logs it and drops the connection
        log.exception("unexpected error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal", "message": "internal server error"}, status=500)
    if request.app[SETTINGS].https:  # browsers keep to HTTPS for a year once they have seen this over HTTPS
        response.headers.setdefault("Strict-Transport-Security", _HSTS)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", _CSP)
    return response


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await asyncio.to_thread(private_dir, settings.data_dir)  # 0700: docs/SECURITY.md §9
    url = settings.effective_database_url
    await upgrade(url)
    engine = make_engine(url)
    app[ENGINE] = engine
    app[DB] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def _startup_objects_frozen(app: web.Application) -> AsyncIterator[None]:
    """The objects made until the server is up (modules, the app, its resources) live as long as it does: frozen out
    of the cyclic collector, so that a request that builds many (the QC dashboard's 500 rows) no longer sets off a
    full pass over all of them every few requests (~100 ms each, bench/dashboard.py). Thawed at shutdown."""
    gc.freeze()
    yield
    gc.unfreeze()


async def _rooms(app: web.Application) -> AsyncIterator[None]:
    """The rooms of this process alone, or, with Redis (several server processes), rooms spanning them all."""
    shared = app.get(CLUSTER)
    if shared is None:
        app[ROOMS] = RoomRegistry()
        yield
        return
    registry = RedisRoomRegistry(shared)
    await registry.start()
    app[ROOMS] = registry
    yield
    await registry.stop()


async def _close_sockets(app: web.Application) -> None:
    await app[ROOMS].close_all()


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    middlewares = [audit_hooks.middleware, error_middleware]  # audit outermost: it records what the errors answered
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[TARGETS] = Targets.from_json(settings.turnaround_json)
    app[QC_WEIGHTS] = parse_weights(settings.qc_weights)  # a bad TELEUS_QC_WEIGHTS stops the server here
    app[CATALOGS] = Catalogs.load()  # a malformed catalog stops the server here
    app[CLOCK] = _utc_now  # tests set their own before the app starts
    app[THROTTLE] = login_throttle(app)
    app[SIGNAL_LIMITS] = SignalLimits(settings)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(audit_trail.audit_trail)  # before every feature that appends to it, closed after them
    app.cleanup_ctx.append(cluster)  # Redis, when several server processes share rooms and limits
    app.cleanup_ctx.append(shared_limits)  # the socket quota and chat buckets counted in Redis (with a cluster)
    app.cleanup_ctx.append(_rooms)
    app.cleanup_ctx.append(doorbell.doorbell)
    app.cleanup_ctx.append(change_notices.change_hub)  # before every feature that tells of its changes
    app.cleanup_ctx.append(hashing_pool)
    app.cleanup_ctx.append(credential_watch)
    app.cleanup_ctx.append(dicom_blobs.blob_store)
    app.cleanup_ctx.append(forward.forwarder)
    app.cleanup_ctx.append(ingest.dicom_store)
    app.cleanup_ctx.append(scp.storage_scp)
    app.cleanup_ctx.append(report_archiving.report_archiver)
    app.cleanup_ctx.append(finding_escalation.escalation_timer)
    app.cleanup_ctx.append(recording_scoring.qc_scorer)
    app.cleanup_ctx.append(teaching_exports.teaching_exports)
    app.cleanup_ctx.append(review_copies.review_copies)
    app.cleanup_ctx.append(_startup_objects_frozen)  # last: after every resource is made
    app.on_shutdown.append(_close_sockets)
    app.on_shutdown.append(doorbell.close_doorbell)  # waiting devices answered now, not after their wait
    app.on_shutdown.append(change_notices.close_streams)  # the consoles' event streams end now
    app.on_response_prepare.append(audit_hooks.before_headers)
    app.on_response_prepare.append(caching.no_store)  # patient data is never cached (docs/SECURITY.md §9)
    app.add_routes(auth_routes.routes)
    app.add_routes(credential_routes.routes)
    app.add_routes(admin_routes.routes)
    app.add_routes(account_routes.routes)
    app.add_routes(consultation_routes.routes)
    app.add_routes(event_stream.routes)
    app.add_routes(reading_routes.routes)
    app.add_routes(dicomweb.routes)
    app.add_routes(patient_routes.routes)
    app.add_routes(peer_routes.routes)
    app.add_routes(forward_routes.routes)
    app.add_routes(access_routes.routes)
    app.add_routes(finding_routes.routes)
    app.add_routes(report_routes.routes)
    app.add_routes(report_peer_routes.routes)
    app.add_routes(report_site_routes.routes)
    app.add_routes(recording_routes.routes)
    app.add_routes(recording_review_routes.routes)
    app.add_routes(recording_teaching_routes.routes)
    app.add_routes(audit_routes.routes)
    app.add_routes(localization_routes.routes)
    app.add_routes(duty_routes.routes)
    app.add_routes(site_targets.routes)
    app.add_routes(result_routes.routes)
    app.add_routes(site_header_routes.routes)
    app.add_routes(order_routes.routes)
    app.router.add_get("/api/v1/consultations/{id}/signal", signal)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    return app
