"""The DICOM listener: a pynetdicom Storage SCP (every storage SOP class, the usual transfer syntaxes, JPEG Baseline
included) with Verification (C-ECHO), AE title `TELEUS` by default.

A modality is known by its calling AE title: each `Site.ae_title` names one site. An association from any other
AE title is rejected before anything is exchanged. pynetdicom runs each association in its own thread; the
handlers hand the received bytes (the encoded dataset exactly as sent, with file meta naming the negotiated
transfer syntax) to `ingest.store_instance` on the app's event loop and wait for its answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from aiohttp import web
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signaling_server import errors
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.db.models import Site
from signaling_server.dicomstore.ingest import DICOM_STORE, DicomStore, store_instance

log = logging.getLogger(__name__)

T = TypeVar("T")

# C-STORE response statuses (PS3.4 B.2.3, PS3.7 C.4), each answered with an Error Comment naming our error code.
SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124  # Refused: not authorized: the AE title lost its site, or the study belongs to another site
OUT_OF_RESOURCES = 0xA700  # Refused: out of resources: the disk, or ingest did not answer in time; worth a retry
DATA_SET_MISMATCH = 0xA900  # Error: data set does not match SOP class: a UID the store needs is missing
CANNOT_UNDERSTAND = 0xC000  # Error: cannot understand: unreadable, truncated, or the UID is stored with other content
PROCESSING_FAILURE = 0x0110  # Failure: processing failure: anything unexpected (logged)

# A-ASSOCIATE-RJ for an unknown calling AE (PS3.8 9.3.4): rejected-permanent, by the service user,
# reason "calling-AE-title-not-recognized". The peer is told not to retry.
REJECT_PERMANENT, SOURCE_SERVICE_USER, CALLING_AE_NOT_RECOGNIZED = 0x01, 0x01, 0x03
# When the site lookup itself fails (the database is down): rejected-transient, no reason given.
REJECT_TRANSIENT, NO_REASON = 0x02, 0x01


class StorageSCP:
    def __init__(
        self,
        store: DicomStore,
        sessions: async_sessionmaker[AsyncSession],
        loop: asyncio.AbstractEventLoop,
        *,
        ae_title: str,
        host: str,
        port: int,
        timeout: float = 120.0,
    ) -> None:
        self.store, self.sessions, self.loop = store, sessions, loop
        self.address = (host, port)
        self.timeout = timeout
        self.ae = AE(ae_title)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            self.ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self.ae.add_supported_context(Verification)
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    def start(self) -> None:
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        self._server = self.ae.start_server(self.address, block=False, evt_handlers=handlers)
        log.info("DICOM listener %s on %s:%s", self.ae.ae_title, self.address[0], self.port)

    def stop(self) -> None:
        """Stop listening and end the associations still open (blocking: call it from a thread)."""
        self.ae.shutdown()
        log.info("DICOM listener stopped")

    def _on_requested(self, event: Event) -> None:
        """A-ASSOCIATE-RQ arrived: accept only calling AE titles that name a site."""
        request = event.assoc.requestor.primitive
        calling = str(request.calling_ae_title).strip() if request is not None else ""
        try:
            site_id = self._on_loop(self._site_for(calling))
        except Exception:
            log.exception("cannot look up the site of calling AE %s", calling)
            self._reject(event, REJECT_TRANSIENT, NO_REASON)
            return
        if site_id is None:
            log.warning("association from unknown calling AE %r rejected", calling)
            self._reject(event, REJECT_PERMANENT, CALLING_AE_NOT_RECOGNIZED)

    @staticmethod
    def _reject(event: Event, result: int, diagnostic: int) -> None:
        event.assoc.acse.send_reject(result, SOURCE_SERVICE_USER, diagnostic)
        event.assoc.kill()

    def _on_echo(self, event: Event) -> int:
        return SUCCESS  # Verification: we are here

    def _on_store(self, event: Event) -> Dataset:
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            raw = event.encoded_dataset(include_meta=True)
            site_id = self._on_loop(self._site_for(calling))
            if site_id is None:
                return _status(NOT_AUTHORIZED, "forbidden", f"calling AE {calling} names no site any more")
            stored = self._on_loop(
                store_instance(self.store, raw, site_id=site_id, received_via="c-store", calling_ae=calling)
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

    async def _site_for(self, ae_title: str) -> str | None:
        if not ae_title:
            return None
        async with self.sessions() as db:
            return await db.scalar(select(Site.id).where(Site.ae_title == ae_title))


DICOM_SCP = web.AppKey("dicom_scp", StorageSCP)  # only when the DICOM port is on


def _status(status: int, code: str, message: str) -> Dataset:
    answer = Dataset()
    answer.Status = status
    if status != SUCCESS:
        answer.ErrorComment = f"{code}: {message}"[:64]
    return answer


async def storage_scp(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after `dicom_store`): the listener, when `dicom_port` is set (0 picks a free port)."""
    settings = app[SETTINGS]
    if settings.dicom_port is None:
        yield
        return
    scp = StorageSCP(
        app[DICOM_STORE],
        app[DB],
        asyncio.get_running_loop(),
        ae_title=settings.dicom_ae_title,
        host=settings.dicom_host,
        port=settings.dicom_port,
    )
    await asyncio.to_thread(scp.start)
    app[DICOM_SCP] = scp
    try:
        yield
    finally:
        await asyncio.to_thread(scp.stop)
