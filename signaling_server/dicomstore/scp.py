"""The DICOM listener: a pynetdicom Storage SCP (every storage SOP class, the usual transfer syntaxes, JPEG Baseline
included) with Verification (C-ECHO) and the Modality Worklist (C-FIND, `orders/worklist.py`; off with
TELEUS_WORKLIST=off), AE title `TELEUS` by default, on plain TCP, DICOM TLS, or both.

Only DICOM peers (`peers.py`) may associate: the calling AE title, the source address and the TLS client
certificate are checked when the A-ASSOCIATE-RQ arrives, and a refusal is logged with its reason, answered with
A-ASSOCIATE-RJ before anything is exchanged, and written to the audit trail as `audit/rejections.py` aggregates it
(the first of each address and reason at once, the rest summed up per minute). While an association lasts, each
arriving dataset is counted as its P-DATA comes in, and the association is aborted as soon as one passes the peer's
limit. pynetdicom runs each association in its own thread; the handlers hand the received bytes (the encoded
dataset exactly as sent, with file meta naming the negotiated transfer syntax) to `ingest.store_instance` on the
app's event loop and wait for its answer.

Three guards pynetdicom lacks are added by :class:`PeerServer`: the TLS handshake runs in the connection's own thread
with a deadline (pynetdicom does it in the thread that accepts, where one silent client would stop all others), a PDU
declaring more than :data:`MAX_PDU_BYTES` ends the connection before it is read (pynetdicom reads whatever length a
PDU declares, up to 4 GiB, before any handler runs), and a PDU that stalls half-way for the AE's network timeout
(60 s) ends it too (pynetdicom would wait for the rest for ever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socketserver
import ssl
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signaling_server import errors
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.audit import dicom as audit_dicom
from signaling_server.audit.rejections import Rejection, Rejections
from signaling_server.audit.trail import AUDIT_TRAIL, AuditTrail, Entry
from signaling_server.dicomstore import peers, tls
from signaling_server.dicomstore.ingest import DICOM_STORE, DicomStore, store_instance
from signaling_server.dicomstore.peers import Knock, PeerPolicy, Refusal
from signaling_server.orders import worklist

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_PDU_BYTES = 1 << 20  # we offer 16 KiB P-DATA PDUs; an A-ASSOCIATE-RQ with many contexts stays far below this
HANDSHAKE_SECONDS = 30.0
REJECTION_SUMMARY_SECONDS = 5.0  # how often the summaries of rejected associations that are due are written

# C-STORE response statuses (PS3.4 B.2.3, PS3.7 C.4), each answered with an Error Comment naming our error code.
SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124  # Refused: not authorized: the peer was disabled, or the study belongs to another site
OUT_OF_RESOURCES = 0xA700  # Refused: out of resources: the disk, ingest too slow, or the dataset over the peer's limit
DATA_SET_MISMATCH = 0xA900  # Error: data set does not match SOP class: a UID the store needs is missing
CANNOT_UNDERSTAND = 0xC000  # Error: cannot understand: unreadable, truncated, or the UID is stored with other content
PROCESSING_FAILURE = 0x0110  # Failure: processing failure: anything unexpected (logged)

# C-FIND (worklist) response statuses (PS3.4 C.4.1.1.4, K.4.1.1.4).
PENDING = 0xFF00  # Pending: a match, more may follow
CANCELLED = 0xFE00  # Cancel: the peer sent C-CANCEL; no more matches
IDENTIFIER_MISMATCH = 0xA900  # Failure: the identifier does not match the SOP class (unreadable)
UNABLE_TO_PROCESS = 0xC001  # Failure: unable to process: the peer is disabled now, or the lookup failed (logged)

# A-ASSOCIATE-RJ (PS3.8 9.3.4). A request that is not from a peer as registered: rejected-permanent, by the service
# user, reason "calling-AE-title-not-recognized" (the peer is told not to retry; the log says which check failed).
REJECT_PERMANENT, SOURCE_SERVICE_USER, CALLING_AE_NOT_RECOGNIZED = 0x01, 0x01, 0x03
# When the peer lookup itself fails (the database is down): rejected-transient, no reason given.
REJECT_TRANSIENT, NO_REASON = 0x02, 0x01
# A peer with all its associations open already: rejected-transient, presentation provider, local limit exceeded.
SOURCE_PRESENTATION, LOCAL_LIMIT_EXCEEDED = 0x03, 0x02


@dataclass(frozen=True)
class Listener:
    host: str
    port: int  # 0: any free port
    tls: ssl.SSLContext | None = None


class _BoundedSocket(AssociationSocket):
    def recv(self, nr_bytes: int) -> bytearray:
        if nr_bytes > MAX_PDU_BYTES:
            log.warning("a PDU of %d bytes (over the %d read) ends the connection from %s",
                        nr_bytes, MAX_PDU_BYTES, self.assoc.requestor.address)  # fmt: skip
            self.close()
            return bytearray()  # the DUL sees a short read: the connection is gone
        return super().recv(nr_bytes)


class _PeerRequestHandler(RequestHandler):
    """pynetdicom's handler; the association's socket reads no PDU over MAX_PDU_BYTES. (pynetdicom makes its socket
    inside `_create_association`, with no seam to pass our class: the test of the bound fails if that changes.)"""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        assert type(assoc.dul.socket) is AssociationSocket
        assoc.dul.socket.__class__ = _BoundedSocket  # the same socket, with a bounded recv
        return assoc


class PeerServer(ThreadedAssociationServer):
    """pynetdicom's threaded association server, with the guards of the module's docstring."""

    def get_request(self) -> tuple[Any, Any]:
        assert self.socket is not None
        client, address = self.socket.accept()
        if self.ssl_context is not None:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the connection's own thread: the TLS handshake first, then pynetdicom's association."""
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(HANDSHAKE_SECONDS)
                request.do_handshake()
            except (OSError, ValueError) as exc:
                log.warning("DICOM TLS handshake with %s failed: %s", client_address[0], exc)
                self.shutdown_request(request)
                return
        # pynetdicom reads a PDU only once data is there, but then blocks until all of it came: without a deadline
        # a peer that stops half-way holds its threads, and one of the AE's associations, for ever.
        request.settimeout(self.ae.network_timeout)
        super().finish_request(request, client_address)

    def shutdown(self) -> None:
        socketserver.BaseServer.shutdown(self)  # not pynetdicom's: this server is not in the AE's own list
        self.server_close()


class _Receiving:
    """One accepted association: its peer, and the bytes of the dataset now arriving."""

    def __init__(self, peer: PeerPolicy) -> None:
        self.peer = peer
        self.dataset_bytes = 0
        self.too_large = False


class StorageSCP:
    def __init__(
        self,
        store: DicomStore,
        sessions: async_sessionmaker[AsyncSession],
        loop: asyncio.AbstractEventLoop,
        *,
        ae_title: str,
        listeners: Sequence[Listener],
        timeout: float = 120.0,
        trail: AuditTrail | None = None,
        worklist_zone: tzinfo | None = None,
    ) -> None:
        self.store, self.sessions, self.loop = store, sessions, loop
        self.trail = trail
        self.worklist_zone = worklist_zone  # None: no worklist on this AE
        self.listeners = list(listeners)
        self.timeout = timeout
        self.ae = AE(ae_title)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            self.ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self.ae.add_supported_context(Verification)
        if worklist_zone is not None:
            self.ae.add_supported_context(ModalityWorklistInformationFind)
        self._servers: list[tuple[Listener, PeerServer]] = []
        self._accepted: weakref.WeakKeyDictionary[Association, _Receiving] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._rejections = Rejections()

    @property
    def port(self) -> int:
        """The plain TCP listener's port."""
        return self._port(tls=False)

    @property
    def tls_port(self) -> int:
        return self._port(tls=True)

    def _port(self, *, tls: bool) -> int:
        found = [server for listener, server in self._servers if (listener.tls is not None) == tls]
        assert found, "no such listener started"
        return int(found[0].server_address[1])

    def start(self) -> None:
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_PDU_RECV, self._on_pdu),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        if self.worklist_zone is not None:
            handlers.append((evt.EVT_C_FIND, self._on_find))
        for listener in self.listeners:
            server = self.ae.make_server(
                (listener.host, listener.port), ssl_context=listener.tls, evt_handlers=handlers,
                server_class=PeerServer, request_handler=_PeerRequestHandler,
            )  # fmt: skip
            assert isinstance(server, PeerServer)
            threading.Thread(target=server.serve_forever, name="DICOM listener", daemon=True).start()
            self._servers.append((listener, server))
            kind = "DICOM TLS" if listener.tls is not None else "DICOM"
            log.info("%s listener %s on %s:%s", kind, self.ae.ae_title, listener.host, server.server_address[1])

    def stop(self) -> None:
        """Stop listening and end the associations still open (blocking: call it from a thread)."""
        for _, server in self._servers:
            server.shutdown()
        self.ae.shutdown()  # aborts the associations still open
        self._servers.clear()
        with self._lock:
            entries = self._rejections.close()
        self._write(entries)
        log.info("DICOM listener stopped")

    def _on_requested(self, event: Event) -> None:
        """A-ASSOCIATE-RQ arrived: accept only a DICOM peer, as registered (`peers.admit`)."""
        assoc = event.assoc
        request = assoc.requestor.primitive
        knock = Knock(
            str(request.calling_ae_title).strip() if request is not None else "",
            str(assoc.requestor.address),
            _client_certificate_pin(assoc),
        )
        try:
            peer = self._on_loop(self._policy(knock.calling_ae))
        except Exception:
            log.exception("cannot look up the DICOM peer %r", knock.calling_ae)
            self._reject(event, REJECT_TRANSIENT, SOURCE_SERVICE_USER, NO_REASON)
            return
        with self._lock:
            open_now = sum(
                1
                for other, receiving in list(self._accepted.items())
                if other is not assoc and receiving.peer.id == (peer.id if peer else None) and other.is_alive()
                and not (other.is_released or other.is_aborted)
            )  # fmt: skip
            refusal = peers.admit(knock, peer, open_now)
            if refusal is None:
                assert peer is not None
                self._accepted[assoc] = _Receiving(peer)
        if refusal is None:
            return
        log.warning(
            "association from AE %r at %s rejected: %s (%s)",
            knock.calling_ae, knock.address, refusal, peers.explain(refusal, knock, peer),
        )  # fmt: skip
        transient = refusal is Refusal.TOO_MANY_ASSOCIATIONS
        rejection = Rejection(
            knock.calling_ae, knock.address, refusal.value, peers.explain(refusal, knock, peer),
            REJECT_TRANSIENT if transient else REJECT_PERMANENT, peer.site_id if peer is not None else None,
        )  # fmt: skip
        with self._lock:  # counted before the peer hears of it: whoever saw the rejection finds it counted
            entries = self._rejections.note(rejection, datetime.now(UTC))
        self._write(entries)
        if transient:
            self._reject(event, REJECT_TRANSIENT, SOURCE_PRESENTATION, LOCAL_LIMIT_EXCEEDED)
        else:
            self._reject(event, REJECT_PERMANENT, SOURCE_SERVICE_USER, CALLING_AE_NOT_RECOGNIZED)

    def summarise_rejections(self, at: datetime | None = None) -> None:
        """Write the summaries of rejected associations that are due at `at` (now by default)."""
        with self._lock:
            entries = self._rejections.due(at or datetime.now(UTC))
        self._write(entries)

    def _write(self, entries: list[Entry]) -> None:
        """Hand audit rows to the trail without waiting for them (from any thread; a failure is logged there)."""
        if self.trail is None or not entries:
            return
        try:
            self.loop.call_soon_threadsafe(_submit_all, self.trail, entries)
        except RuntimeError:  # the loop has closed: the server is gone
            log.warning("%d audit rows of rejected associations not written: the server has stopped", len(entries))

    @staticmethod
    def _reject(event: Event, result: int, source: int, diagnostic: int) -> None:
        event.assoc.acse.send_reject(result, source, diagnostic)
        event.assoc.kill()

    def _on_pdu(self, event: Event) -> None:
        """Every PDU received (in the association's network thread): count the dataset arriving; abort past the limit.

        The count restarts with each complete command set, so it is the size of one dataset as encoded. The flag is
        raised before pynetdicom hands this PDU on, so a dataset completed by it is refused in `_on_store` too.
        """
        pdu = event.pdu
        receiving = self._accepted.get(event.assoc)
        if not isinstance(pdu, P_DATA_TF) or receiving is None or receiving.too_large:
            return
        for item in pdu.presentation_data_value_items:
            value = item.presentation_data_value or b"\x00"
            if value[0] & 0x01:  # a command fragment; the last one starts a new message
                if value[0] & 0x02:
                    receiving.dataset_bytes = 0
            else:
                receiving.dataset_bytes += len(value) - 1
        limit = receiving.peer.max_dataset_bytes
        if receiving.dataset_bytes > limit:
            receiving.too_large = True
            log.warning(
                "DICOM peer %s at %s sent a dataset over its limit of %d bytes: association aborted",
                receiving.peer.ae_title, event.assoc.requestor.address, limit,
            )  # fmt: skip
            event.assoc.abort(block=False)

    def _on_echo(self, event: Event) -> int:
        return SUCCESS  # Verification: we are here

    def _on_store(self, event: Event) -> Dataset:
        answer = self._store(event)
        if self.trail is not None:  # every C-STORE leaves an audit row; the answer stands if it cannot be written
            try:
                self._on_loop(self._audit(event, answer, self.trail))
            except Exception:
                log.exception("no audit row for a C-STORE from %s", event.assoc.requestor.ae_title)
        return answer

    async def _audit(self, event: Event, answer: Dataset, trail: AuditTrail) -> None:
        receiving = self._accepted.get(event.assoc)
        entry = audit_dicom.received(
            calling_ae=str(event.assoc.requestor.ae_title).strip(),
            address=event.assoc.requestor.address,
            sop_uid=str(getattr(event.request, "AffectedSOPInstanceUID", "") or ""),
            status=int(answer.Status),
            comment=str(answer.get("ErrorComment", "")),
            site_id=receiving.peer.site_id if receiving is not None else None,
        )
        await trail.append(entry)

    def _store(self, event: Event) -> Dataset:
        receiving = self._accepted.get(event.assoc)
        calling = str(event.assoc.requestor.ae_title).strip()
        if receiving is None:  # cannot happen: every accepted association was admitted
            return _status(NOT_AUTHORIZED, "forbidden", "this association was not admitted")
        if receiving.too_large:
            limit = receiving.peer.max_dataset_bytes
            return _status(OUT_OF_RESOURCES, "too_large", f"the dataset is over this peer's {limit} bytes")
        try:
            peer = self._on_loop(self._policy_by_id(receiving.peer.id))
            if peer is None or not peer.enabled:
                return _status(NOT_AUTHORIZED, "forbidden", f"the DICOM peer {calling} is disabled")
            raw = event.encoded_dataset(include_meta=True)
            stored = self._on_loop(
                store_instance(self.store, raw, site_id=peer.site_id, received_via="c-store", calling_ae=calling)
            )
            return _status(SUCCESS, "stored" if not stored.already_stored else "already_stored", "")
        except errors.MissingAttribute as exc:
            return _status(DATA_SET_MISMATCH, exc.code, exc.message)
        except (errors.InvalidDicom, errors.InstanceConflict) as exc:
            return _status(CANNOT_UNDERSTAND, exc.code, exc.message)
        except errors.TooLarge as exc:  # over a cap (limits.py): Cxxx, not A7xx, which senders retry for ever
            return _status(CANNOT_UNDERSTAND, exc.code, exc.message)
        except (errors.Forbidden, errors.InvalidRequest) as exc:
            return _status(NOT_AUTHORIZED, exc.code, exc.message)
        except (TimeoutError, OSError) as exc:
            log.exception("C-STORE from %s could not be stored", calling)
            return _status(OUT_OF_RESOURCES, "out_of_resources", str(exc) or type(exc).__name__)
        except Exception:
            log.exception("C-STORE from %s failed", calling)
            return _status(PROCESSING_FAILURE, "processing_failure", "the server failed to store this object")

    def _on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the app's event loop and wait for it (called from pynetdicom's threads)."""
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()  # ingest's own cleanup removes anything half-written
            raise

    def _on_find(self, event: Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        """A Modality Worklist C-FIND: the calling peer's own site's scheduled orders that match (worklist.py).

        Audited before anything is answered: a worklist holds patients, and no read of them goes unaudited."""
        receiving = self._accepted.get(event.assoc)
        calling = str(event.assoc.requestor.ae_title).strip()
        if receiving is None:  # cannot happen: every accepted association was admitted
            yield _status(UNABLE_TO_PROCESS, "forbidden", "this association was not admitted"), None
            return
        try:
            query = event.identifier
        except Exception as exc:
            log.warning("worklist query from %s unreadable: %s", calling, exc)
            yield _status(IDENTIFIER_MISMATCH, "invalid_dicom", "the query cannot be read"), None
            return
        try:
            peer = self._on_loop(self._policy_by_id(receiving.peer.id))
            if peer is None or not peer.enabled:
                yield _status(UNABLE_TO_PROCESS, "forbidden", f"the DICOM peer {calling} is disabled"), None
                return
            assert self.worklist_zone is not None
            found = self._on_loop(self._find(peer.site_id, calling, query, self.worklist_zone))
            if self.trail is not None:
                entry = audit_dicom.worklist_searched(
                    calling_ae=calling, address=event.assoc.requestor.address, site_id=peer.site_id,
                    keys=_asked(query), order_ids=found.order_ids, status=SUCCESS,
                )  # fmt: skip
                self._on_loop(self.trail.append(entry))
        except Exception:
            log.exception("worklist query from %s failed", calling)
            yield _status(OUT_OF_RESOURCES, "out_of_resources", "the worklist cannot be read just now"), None
            return
        log.info("worklist query from %s (site %s): %d items", calling, peer.site_id, len(found.answers))
        for item in found.answers:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            yield PENDING, item

    async def _find(self, site_id: str, calling: str, query: Dataset, zone: tzinfo) -> worklist.Found:
        async with self.sessions() as db:
            return await worklist.find(db, site_id, calling, query, zone)

    async def _policy(self, ae_title: str) -> PeerPolicy | None:
        async with self.sessions() as db:
            return await peers.policy_for(db, ae_title)

    async def _policy_by_id(self, peer_id: str) -> PeerPolicy | None:
        async with self.sessions() as db:
            return await peers.policy_by_id(db, peer_id)


DICOM_SCP = web.AppKey("dicom_scp", StorageSCP)  # only when a DICOM port is on


def _submit_all(trail: AuditTrail, entries: list[Entry]) -> None:
    for entry in entries:
        trail.submit(entry)


def _client_certificate_pin(assoc: Association) -> str | None:
    """The pin of the TLS client certificate the peer presented, if it came over TLS with one."""
    wrapper = assoc.dul.socket
    connection = wrapper.socket if wrapper is not None else None
    if not isinstance(connection, ssl.SSLSocket):
        return None
    der = connection.getpeercert(binary_form=True)
    return tls.fingerprint(der) if der else None


def _asked(query: Dataset) -> dict[str, str]:
    """The keys of a worklist query that have a value, for the audit row (the sequence's keys by their names)."""
    asked: dict[str, str] = {}
    for element in query.iterall():
        if element.VR != "SQ" and element.keyword and element.keyword != "SpecificCharacterSet" and element.value:
            asked[element.keyword] = str(element.value)[:64]
    return asked


def _status(status: int, code: str, message: str) -> Dataset:
    answer = Dataset()
    answer.Status = status
    if status != SUCCESS:
        answer.ErrorComment = f"{code}: {message}"[:64]
    return answer


async def storage_scp(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after `dicom_store`): the listeners, when `dicom_port` or `dicom_tls_port` is set (0: a free
    port)."""
    settings = app[SETTINGS]
    listeners = []
    if settings.dicom_port is not None:
        listeners.append(Listener(settings.dicom_host, settings.dicom_port))
    if settings.dicom_tls_port is not None:
        listeners.append(Listener(settings.dicom_host, settings.dicom_tls_port, tls.listener_context(settings)))
    if not listeners:
        yield
        return
    async with app[DB]() as db:
        for peer in await peers.list_peers(db):
            if peer.enabled and PeerPolicy.of(peer).open_to_anywhere:
                log.warning("DICOM peer %s accepts associations from any address: narrow its networks", peer.ae_title)
    scp = StorageSCP(
        app[DICOM_STORE],
        app[DB],
        asyncio.get_running_loop(),
        ae_title=settings.dicom_ae_title,
        listeners=listeners,
        trail=app.get(AUDIT_TRAIL),
        worklist_zone=ZoneInfo(settings.worklist_timezone) if settings.worklist else None,
    )
    await asyncio.to_thread(scp.start)
    app[DICOM_SCP] = scp
    summaries = asyncio.create_task(_summarise_rejections(scp), name="dicom-rejection-summaries")
    try:
        yield
    finally:
        summaries.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await summaries
        await asyncio.to_thread(scp.stop)
        await asyncio.sleep(0)  # the last summaries reach the trail's queue before it closes


async def _summarise_rejections(scp: StorageSCP) -> None:
    while True:
        await asyncio.sleep(REJECTION_SUMMARY_SECONDS)
        scp.summarise_rejections()
