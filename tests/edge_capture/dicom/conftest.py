"""Shared pieces for the DICOM tests: real synthetic scanners, a study, frames, and the real dciodvfy."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from aiohttp import web
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array

from edge_capture.dicom.ultrasound import StudyContext
from edge_capture.frames import SourceFrame
from edge_capture.sources.synthetic import SyntheticSource

FIXED_CLOCK = 1_780_000_000.0
STUDY_UID = "1.2.826.0.1.3680043.8.498.1234567890123456789"
FRAME_NS = 33_333_333


def make_source(preset: str, width: int = 640, height: int = 480) -> SyntheticSource:
    return SyntheticSource(preset, width, height, 30.0, cycle_seconds=1.0, paced=False, clock=lambda: FIXED_CLOCK)


@pytest.fixture(scope="session")
def thyroid() -> SyntheticSource:
    return make_source("thyroid")


@pytest.fixture(scope="session")
def carotid() -> SyntheticSource:
    return make_source("carotid")


def context(exam_type: str = "thyroid", **changes: str) -> StudyContext:
    fields = {
        "patient_name": "张^三",
        "patient_id": "TLS-004217",
        "study_instance_uid": STUDY_UID,
        "study_date": "20260301",
        "study_time": "093000",
        "exam_type": exam_type,
        "patient_birth_date": "19700102",
        "patient_sex": "F",
        "accession_number": "ACC-17",
        "referring_physician_name": "王^医生",
        "expert_name": "Expert^Eve",
        "institution_name": "North Community Health Centre",
        "device_name": "edge-north-1",
        "device_serial_number": "SN-0001",
    }
    fields.update(changes)
    return StudyContext(**fields)


def frames_of(images: list[np.ndarray], start_ns: int | None = None, step_ns: int = FRAME_NS) -> list[SourceFrame]:
    """SourceFrames as the capture thread makes them: consecutive indexes, real-looking clocks."""
    start = time.time_ns() if start_ns is None else start_ns
    now = time.monotonic_ns()
    count = len(images)
    return [
        SourceFrame(i, start + i * step_ns, now - (count - 1 - i) * step_ns, np.ascontiguousarray(image))
        for i, image in enumerate(images)
    ]


def synthetic_frames(source: SyntheticSource, count: int, grey: bool = False, **kwargs: int) -> list[SourceFrame]:
    images = [source.render(k, FIXED_CLOCK) for k in range(count)]
    if grey:
        images = [np.repeat(image[..., 1:2], 3, axis=2) for image in images]
    return frames_of(images, **kwargs)


def pydicom_file(name: str) -> str:
    """A pydicom / pydicom-data test file by its exact name (a wildcard would ask the internet)."""
    path = get_testdata_file(name)
    assert isinstance(path, str), f"{name} is not installed"
    return path


def real_us_frames(name: str, count: int | None = None) -> list[SourceFrame]:
    """Frames of a real ultrasound file from pydicom-data, as BGR like a capture card's."""
    ds = pydicom.dcmread(pydicom_file(name))
    pixels = pixel_array(ds, as_rgb=True)
    images = [pixels] if pixels.ndim == 3 else list(pixels[:count])
    return frames_of([np.ascontiguousarray(image[..., ::-1]) for image in images])


def dciodvfy(path: Path) -> list[str]:
    """The Error and Warning lines of dicom3tools' IOD validation of a Part 10 file."""
    run = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith(("Error", "Warning"))]


def save_and_validate(ds: Dataset, path: Path) -> Dataset:
    """Write a conformant Part 10 file, assert dciodvfy finds nothing, and read it back."""
    ds.save_as(path, enforce_file_format=True)
    assert dciodvfy(path) == []
    return pydicom.dcmread(path)


# -- the network seam: a small STOW-RS server on 127.0.0.1 -----------------------------------------------------


def _sop_item(uid: str, sop_class: str, reason: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "00081150": {"vr": "UI", "Value": [sop_class]},
        "00081155": {"vr": "UI", "Value": [uid]},
    }
    if reason is not None:
        item["00081197"] = {"vr": "US", "Value": [reason]}
    return item


def _teleus_failure(uid: str, sop_class: str) -> dict[str, Any]:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID, item.FailureReason = sop_class, uid, 0xA900
    block = item.private_block(0x0009, "TELEUS 1.0", create=True)
    block.add_new(0x01, "LO", "missing_attribute")
    block.add_new(0x02, "LT", "PatientID is missing")
    return item.to_json_dict()


@dataclass
class StowServer:
    """Plays the teleus server's STOW-RS endpoint; `script` holds what to answer next, one entry per request.

    Entries: "ok", "drop" (close the connection), "503", "500", "400" (a refusal with the server's error shape),
    "401", "429" (with Retry-After), "202-fail" (failure reason A700H for every instance), "409-missing"
    (A900H with the teleus private code and message, as the real server answers), "409-processing" (0110H for
    every instance: the server failed to process it).
    With nothing scripted it answers "ok", or 409 with reason 0111H for a UID it already holds.
    """

    credential: str = "device-secret"
    script: list[str] = field(default_factory=list)
    stored: dict[str, Dataset] = field(default_factory=dict)
    requests: list[list[str]] = field(default_factory=list)  # the SOP Instance UIDs of each request
    received: dict[str, bytes] = field(default_factory=dict)  # each instance's bytes as they came over the wire
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 << 20)
        app.router.add_post("/dicomweb/studies", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert request.headers["Authorization"] == f"Bearer {self.credential}"
        assert request.headers["Accept"] == "application/dicom+json"
        body = await request.read()
        payloads = multipart_payloads(request.headers["Content-Type"], body)
        datasets = [pydicom.dcmread(BytesIO(payload)) for payload in payloads]
        uids = [str(ds.SOPInstanceUID) for ds in datasets]
        self.requests.append(uids)
        self.received.update(zip(uids, payloads, strict=True))
        action = self.script.pop(0) if self.script else "ok"
        if action == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if action in ("500", "503"):
            return web.json_response({"error": "unavailable", "message": "try later"}, status=int(action))
        if action == "400":
            return web.json_response({"error": "invalid_dicom", "message": "not an ultrasound image"}, status=400)
        if action == "401":
            return web.json_response({"error": "unauthorized", "message": "device revoked"}, status=401)
        if action == "429":
            return web.json_response(
                {"error": "slow_down", "message": "too many"}, status=429, headers={"Retry-After": "0"}
            )
        classes = {str(ds.SOPInstanceUID): str(ds.SOPClassUID) for ds in datasets}
        if action == "202-fail":
            failed = [_sop_item(uid, classes[uid], 0xA700) for uid in uids]
            return web.json_response({"00081198": {"vr": "SQ", "Value": failed}}, status=202)
        if action == "409-processing":
            failed = [_sop_item(uid, classes[uid], 0x0110) for uid in uids]
            return web.json_response({"00081198": {"vr": "SQ", "Value": failed}}, status=409)
        if action == "409-missing":  # as the teleus server answers: a FailureReason and its own code
            failed = [_teleus_failure(uid, classes[uid]) for uid in uids]
            return web.json_response({"00081198": {"vr": "SQ", "Value": failed}}, status=409)
        duplicates = [uid for uid in uids if uid in self.stored]
        if duplicates:
            failed = [_sop_item(uid, classes[uid], 0x0111) for uid in duplicates]
            return web.json_response({"00081198": {"vr": "SQ", "Value": failed}}, status=409)
        for ds in datasets:
            self.stored[str(ds.SOPInstanceUID)] = ds
        stored = [_sop_item(uid, classes[uid]) for uid in uids]
        return web.json_response(
            {"00081199": {"vr": "SQ", "Value": stored}}, status=200, content_type="application/dicom+json"
        )


def parse_multipart(content_type: str, body: bytes) -> list[Dataset]:
    """Split a multipart/related body on its boundary and read every part with pydicom."""
    return [pydicom.dcmread(BytesIO(payload)) for payload in multipart_payloads(content_type, body)]


def multipart_payloads(content_type: str, body: bytes) -> list[bytes]:
    """The parts of a multipart/related body of DICOM files, split on its boundary."""
    media, *params = [p.strip() for p in content_type.split(";")]
    values = dict(p.split("=", 1) for p in params)
    assert media == "multipart/related" and values["type"] == '"application/dicom"'
    boundary = b"--" + values["boundary"].strip('"').encode()
    assert body.startswith(boundary) and body.endswith(boundary + b"--\r\n")
    payloads: list[bytes] = []
    for part in body.split(boundary)[1:-1]:
        headers, _, payload = part.partition(b"\r\n\r\n")
        assert b"Content-Type: application/dicom" in headers
        assert payload.endswith(b"\r\n")
        payloads.append(payload[:-2])
    assert payloads
    return payloads


@pytest.fixture
async def stow_server(aiohttp_server: Any) -> StowServer:
    server = StowServer()
    running = await aiohttp_server(server.app(), host="127.0.0.1")
    server.url = str(running.make_url("")).rstrip("/")
    return server
