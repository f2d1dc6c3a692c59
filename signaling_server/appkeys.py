"""Every piece of shared application state, declared once as a typed AppKey."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signaling_server.settings import Settings

if TYPE_CHECKING:
    from signaling_server.dicomstore.blobs import BlobStore
    from signaling_server.dicomstore.forward import Forwarder
    from signaling_server.dicomstore.ingest import DicomStore
    from signaling_server.dicomstore.scp import StorageSCP
    from signaling_server.quality.scorer import Scorer
    from signaling_server.reading.targets import Targets
    from signaling_server.signaling.rooms import RoomRegistry
    from signaling_server.training.teaching_routes import TeachingExports

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DB = web.AppKey("db", async_sessionmaker[AsyncSession])
ROOMS: web.AppKey[RoomRegistry] = web.AppKey("rooms")
TARGETS: web.AppKey[Targets] = web.AppKey("targets")
BLOBS: web.AppKey[BlobStore] = web.AppKey("dicom_blobs")
DICOM_STORE: web.AppKey[DicomStore] = web.AppKey("dicom_store")  # what ingest needs, see dicomstore/ingest.py
FORWARDER: web.AppKey[Forwarder] = web.AppKey("dicom_forwarder")  # only when TELEUS_PACS is set
DICOM_SCP: web.AppKey[StorageSCP] = web.AppKey("dicom_scp")  # only when the DICOM port is on
QC_WEIGHTS: web.AppKey[dict[str, float]] = web.AppKey("qc_weights")  # TELEUS_QC_WEIGHTS, checked at start
QC_SCORER: web.AppKey[Scorer] = web.AppKey("qc_scorer")  # only when TELEUS_QC_SCORING is on (recordings/scoring.py)
TEACHING_EXPORTS: web.AppKey[TeachingExports] = web.AppKey("teaching_exports")  # recordings/teaching_routes.py
