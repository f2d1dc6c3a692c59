"""A real Orthanc PACS for the forwarding tests: its own config in a temporary folder, free ports, DICOMweb plugin.

Orthanc 1.10 cannot bind to one address: its DICOM port listens on every interface of this test machine for the
few seconds the module runs (HTTP is refused to anyone but localhost: RemoteAccessAllowed is false).
If it does not come up, the test fails with Orthanc's own log: nothing is skipped.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
AE_TITLE = "ORTHANC"


@dataclass(frozen=True)
class Orthanc:
    http: str  # base URL of the REST API
    dicom_port: int
    ae_title: str = AE_TITLE

    @property
    def destination(self) -> str:
        return f"{self.ae_title}@127.0.0.1:{self.dicom_port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(folder: Path, http_port: int, dicom_port: int) -> dict[str, object]:
    return {
        "Name": "teleus-test-pacs",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": AE_TITLE,
        "DicomCheckCalledAet": False,
        "DefaultEncoding": "Utf8",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpsVerifyPeers": False,
        "StorageCompression": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_orthanc(folder: Path, timeout: float = 30.0) -> Iterator[Orthanc]:
    http_port, dicom_port = free_port(), free_port()
    config = folder / "orthanc.json"
    config.write_text(json.dumps(_config(folder, http_port, dicom_port), indent=2))
    log_path = folder / "orthanc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([ORTHANC, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + timeout
        base = f"http://127.0.0.1:{http_port}"
        while not _answers(base + "/system"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not start (exit {process.poll()}); its log:\n{log_path.read_text()}")
            time.sleep(0.1)
        if not _answers(base + "/dicom-web/studies"):
            pytest.fail(f"Orthanc's DICOMweb plugin is not answering; its log:\n{log_path.read_text()}")
        yield Orthanc(base, dicom_port)
    finally:
        process.kill()  # a throwaway instance: no need to wait for its orderly shutdown
        process.wait()
