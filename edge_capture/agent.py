"""The edge capture agent: one capture thread into one ring, and a `ConsultationLink` per open consultation.

The agent polls the server for the consultations assigned to its device (PROTOCOL.md §1,
`/api/v1/devices/me/consultations`): polling survives server restarts and needs no extra channel. It joins each
open consultation's room and leaves when the consultation closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from edge_capture.capture import CaptureThread
from edge_capture.captures import CaptureKit, calibration_of, lossy_history_of
from edge_capture.client import SESSION_TIMEOUT, ServerClient
from edge_capture.consultation import ConsultationLink
from edge_capture.dicom.outbox import Outbox
from edge_capture.dicom.stow import StowClient
from edge_capture.encoding import VideoEncoding, apply_encoding
from edge_capture.errors import ServerError
from edge_capture.hwencoder import probe_encoder
from edge_capture.ice import IceSource
from edge_capture.net import use_host_addresses
from edge_capture.recording.api import RecordingApi
from edge_capture.recording.mp4 import VideoSettings
from edge_capture.recording.recorder import RecorderSettings
from edge_capture.recording.session import RecordingKit
from edge_capture.recording.upload import RecordingUploader
from edge_capture.ring import FrameRing
from edge_capture.sealing.keys import Keyring, default_key_file
from edge_capture.sealing.keys import load as load_keys
from edge_capture.server_url import check_server_url
from edge_capture.sources.base import FrameSource, open_source
from edge_capture.voice import use_fast_audio_level

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeConfig:
    server_url: str
    credential: str
    source: str = "synthetic:thyroid"
    width: int = 1280
    height: int = 720
    fps: float = 30.0
    encoding: VideoEncoding = field(default_factory=VideoEncoding)
    poll_seconds: float = 1.0  # at most one question a second, after an answer or a failure
    wait_seconds: float = 25.0  # how long the server may hold a question while nothing changes
    ice_hosts: tuple[str, ...] = ()
    turn_transport: str | None = None  # udp | tcp | tls: which TURN URL aiortc uses; None: the server's first
    history_seconds: float = 4.0
    # One H.264 encode per frame for all pages of a consultation (edge_capture/fanout.py); False: one per page.
    shared_encoder: bool = True
    # Captures: the outbox folder (kept until the server acknowledges each object), the scanner's calibration
    # file and preset (a synthetic source knows its own), and a lossy step the source applied ("" = work it out).
    spool_dir: Path = Path("teleus-edge-outbox")
    calibration_file: str = ""
    preset: str = ""
    source_lossy: str = ""
    # Recordings (recordings/RECORDINGS.md): made while a consultation is live and its site records, kept in
    # recordings_dir until the server has every file whole (then deleted unless keep_recordings).
    record: bool = True
    recordings_dir: Path | None = None  # None: "edge-recordings" beside spool_dir
    recording_preset: str = "superfast"
    recording_crf: int = 22
    recording_audio: bool = True
    recording_nice: int = 0  # > 0: the recorder thread yields to the live path when the CPU is short
    recording_copy_min_bpp: float | None = 0.15  # copy the live H.264 at or above this rate; None: always encode
    upload_chunk_bytes: int = 1 << 20
    upload_max_bytes_per_second: float | None = None  # None: as fast as the link goes
    keep_recordings: bool = False
    live_qc: bool = True  # image QC alerts on sampled frames (qc.live); off only to measure what it costs
    # The spool key that seals the outbox and the recordings (edge_capture/sealing/keys.py): None means
    # teleus-edge-spool.key beside spool_dir, made on the first run; a file named here must exist.
    spool_key_file: Path | None = None
    # Plain http:// to a server on another machine (edge_capture/server_url.py): refused unless this says so.
    allow_insecure_http: bool = False


class EdgeAgent:
    def __init__(self, config: EdgeConfig, source: FrameSource | None = None) -> None:
        self.config = config
        self.ring = FrameRing(history_seconds=config.history_seconds)
        self._source = source
        self.source: FrameSource | None = source
        self.capture: CaptureThread | None = None
        self.outbox: Outbox | None = None
        self.uploader: RecordingUploader | None = None
        self.keys: Keyring | None = None
        self.links: dict[str, tuple[ConsultationLink, asyncio.Task[None]]] = {}
        self.ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._reask = asyncio.Event()  # set when a link comes back: the held work-list question is asked afresh

    async def start_capture(self) -> None:
        cfg = self.config
        # Opening a source can take seconds (a device, the synthetic generator's precomputed cycle): off the loop.
        source = self._source
        if source is None:
            source = await asyncio.to_thread(open_source, cfg.source, cfg.width, cfg.height, cfg.fps)
        self.source = source
        self.capture = CaptureThread(source, self.ring, name=f"capture:{cfg.source}")
        self.capture.start()

    async def run(self) -> None:
        cfg = self.config
        check_server_url(cfg.server_url, cfg.allow_insecure_http)
        self.keys = await asyncio.to_thread(self._spool_keys)
        if not cfg.encoding.encoder:  # which encoder, for the link panel (docs/LIVE.md, Hardware encoders)
            if cfg.encoding.codec == "h264":
                encoder = (await asyncio.to_thread(probe_encoder, cfg.encoding.x264_preset)).label
            else:
                encoder = "libvpx VP8"
            self.config = cfg = replace(cfg, encoding=replace(cfg.encoding, encoder=encoder))
        apply_encoding(cfg.encoding)
        use_fast_audio_level()
        if cfg.ice_hosts:
            use_host_addresses(cfg.ice_hosts)
        if self.capture is None:
            await self.start_capture()
        stow = StowClient(cfg.server_url, cfg.credential)
        try:
            async with aiohttp.ClientSession(timeout=SESSION_TIMEOUT) as session:
                client = ServerClient(cfg.server_url, cfg.credential, session)
                me = await client.me()
                ice = IceSource(client.ice_config, prefer=cfg.turn_transport)
                await ice.refresh()
                kit = await self._capture_kit(stow, str(me["device"]["name"]))
                log.info("edge %s at %s: streaming %s", me["device"]["id"], me["site"]["code"], cfg.source)
                recordings = await self._recording_kit(session)
                self.ready.set()
                try:
                    await self._poll(client, ice, kit, recordings)
                finally:
                    await self._stop_links()  # each recording is finished before the uploader stops
                    if self.uploader is not None:
                        await self.uploader.close()
        finally:
            await self._stop_links()
            if self.outbox is not None:
                await self.outbox.close()
            await stow.close()
            if self.capture is not None:
                await asyncio.to_thread(self.capture.stop)  # joins the thread and closes the source
            self.ring.close()

    def _spool_keys(self) -> Keyring:
        cfg = self.config
        if cfg.spool_key_file is not None:
            return load_keys(cfg.spool_key_file)
        return load_keys(default_key_file(cfg.spool_dir), create=True)

    async def _capture_kit(self, stow: StowClient, device_name: str) -> CaptureKit:
        """The device's outbox (started: it uploads whatever an earlier run left) and what every capture shares."""
        cfg = self.config
        assert self.source is not None and self.keys is not None
        self.outbox = Outbox(cfg.spool_dir, stow, keys=self.keys)
        await self.outbox.start()
        calibration = calibration_of(self.source, cfg.calibration_file, cfg.preset, cfg.width, cfg.height)
        lossy = await asyncio.to_thread(lossy_history_of, self.source, cfg.source_lossy)
        log.info(
            "captures: outbox %s, calibration %s, source lossy: %s",
            cfg.spool_dir,
            calibration.preset if calibration else "none",
            lossy.method if lossy else "no",
        )
        return CaptureKit(self.outbox, calibration, lossy, device_name, max_clip_seconds=cfg.history_seconds)

    async def _recording_kit(self, session: aiohttp.ClientSession) -> RecordingKit | None:
        """The recordings folder's uploader (started: it resumes whatever an earlier run left) and the settings."""
        cfg = self.config
        root = cfg.recordings_dir or cfg.spool_dir.parent / "edge-recordings"
        api = RecordingApi(cfg.server_url, cfg.credential, session)
        assert self.keys is not None
        self.uploader = RecordingUploader(
            root,
            api,
            keys=self.keys,
            chunk_bytes=cfg.upload_chunk_bytes,
            max_bytes_per_second=cfg.upload_max_bytes_per_second,
            keep_uploaded=cfg.keep_recordings,
        )
        await self.uploader.start()  # uploads what is left even when this edge records no more
        if not cfg.record:
            return None
        video = VideoSettings(preset=cfg.recording_preset, crf=cfg.recording_crf)
        settings = RecorderSettings(
            video=video, fps=cfg.fps, audio=cfg.recording_audio, nice=cfg.recording_nice,
            copy_min_bpp=cfg.recording_copy_min_bpp,
        )  # fmt: skip
        return RecordingKit(root, settings, self.keys, self.uploader)

    async def _poll(
        self,
        client: ServerClient,
        ice: IceSource,
        kit: CaptureKit,
        recordings: RecordingKit | None,
    ) -> None:
        version: str | None = None
        while not self._stopping.is_set():
            asked = time.monotonic()
            try:  # a long poll: the server answers when the list changes, or after wait_seconds
                found, version = await self._ask(client, version)
                open_ids = {c["id"] for c in found}
            except ServerError as exc:
                if exc.fatal:
                    log.error("the server refused this device: %s", exc)
                    raise
                open_ids, version = set(self.links), None
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("server unreachable: %s", exc)
                open_ids, version = set(self.links), None
            for cid in open_ids - set(self.links):
                link = ConsultationLink(
                    client,
                    cid,
                    self.ring,
                    self.config.encoding,
                    ice,
                    shared_encoder=self.config.shared_encoder,
                    captures=kit,
                    recordings=recordings,
                    live_qc=self.config.live_qc,
                    on_link_back=self._link_back,
                )
                self.links[cid] = (link, asyncio.create_task(link.run(), name=f"consultation-{cid}"))
            for cid, (_, task) in list(self.links.items()):
                if task.done():
                    del self.links[cid]
            pause = self.config.poll_seconds - (time.monotonic() - asked)  # never ask faster than poll_seconds
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)

    async def _ask(self, client: ServerClient, version: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The open consultations, waiting on the server (up to wait_seconds) while they are still at `version`;
        stopping the agent ends the wait."""
        self._reask.clear()
        asking = asyncio.ensure_future(client.wait_for_consultations(version, self.config.wait_seconds))
        stopping = asyncio.ensure_future(self._stopping.wait())
        reasking = asyncio.ensure_future(self._reask.wait())
        try:
            deadline = self.config.wait_seconds + 30  # a held answer that never comes: the link died silently
            await asyncio.wait({asking, stopping, reasking}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            reasking.cancel()
        if not asking.done():
            asking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asking
            if self._stopping.is_set() or self._reask.is_set():  # a question on a link that died: asked again
                return [{"id": cid} for cid in self.links], None
            raise TimeoutError(f"no answer from the server in {deadline:g} s")
        return asking.result()

    def _link_back(self) -> None:
        """A consultation's link came back after a loss: what waits for the server goes now, not after its backoff."""
        self._reask.set()  # the work list's held question may be on the connection that died
        if self.outbox is not None:
            self.outbox.retry_now()
        if self.uploader is not None:
            self.uploader.retry_now()

    async def _stop_links(self) -> None:
        for _, task in self.links.values():
            task.cancel()
        for _, task in self.links.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.links.clear()

    def stop(self) -> None:
        self._stopping.set()
