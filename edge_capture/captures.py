"""Still and clip capture in the agent: what the DICOM needs from the consultation, the source and the device.
(Each capture the server asks for is handled by capture_commands.py; capture.py is the source's capture thread.)

The agent keeps one upload outbox for the device (`edge_capture/dicom/outbox.py`: a spool folder, retried until the
server acknowledges, across restarts) and one `StillCapture` per consultation, made from the consultation as the
server describes it (patient, study UID, exam, site, expert). Calibration comes from the synthetic scanner itself,
or from a calibration file for the preset of a real scanner; the lossy history from what the source is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import pydicom

from edge_capture.dicom.calibration import PresetCalibration, calibration_for, for_synthetic, load_calibrations
from edge_capture.dicom.outbox import Outbox
from edge_capture.dicom.stills import StillCapture
from edge_capture.dicom.ultrasound import LossyHistory, StudyContext
from edge_capture.ring import FrameRing
from edge_capture.sources.base import FrameSource
from edge_capture.sources.device import DeviceSource
from edge_capture.sources.dicom import DicomCineSource
from edge_capture.sources.file import VideoFileSource
from edge_capture.sources.synthetic import SyntheticSource

log = logging.getLogger(__name__)

# FFmpeg codec name → DICOM LossyImageCompressionMethod (PS3.3 C.7.6.1.1.5.1)
_LOSSY_METHODS = {
    "h264": "ISO_14496_10",
    "hevc": "ISO_23008_2",
    "mjpeg": "ISO_10918_1",
    "mpeg2video": "ISO_13818_2",
    "mpeg4": "ISO_14496_2",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
}
_LOSSY_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.100": "ISO_13818_2",
    "1.2.840.10008.1.2.4.102": "ISO_14496_10",
}


@dataclass(frozen=True)
class CaptureKit:
    """What every consultation's captures share: the outbox, the calibration, the source's lossy history."""

    outbox: Outbox
    calibration: PresetCalibration | None
    source_lossy: LossyHistory | None
    device_name: str = ""
    max_clip_seconds: float = 10.0


def calibration_of(
    source: FrameSource, calibration_file: str, preset: str, width: int, height: int
) -> PresetCalibration | None:
    """The synthetic scanner's exact calibration; a real one's from the file's preset; None when unknown."""
    if isinstance(source, SyntheticSource):
        return for_synthetic(source)
    if calibration_file and preset:
        return calibration_for(load_calibrations(calibration_file), preset, width, height)
    return None


def lossy_history_of(source: FrameSource, declared: str = "") -> LossyHistory | None:
    """Whether the pixels went through a lossy codec before the edge saw them, and which one."""
    if declared:
        return LossyHistory(declared)
    if isinstance(source, DeviceSource):
        return LossyHistory("ISO_10918_1")  # the card is opened in MJPEG (edge_capture/sources/device.py)
    if isinstance(source, DicomCineSource):
        meta = pydicom.dcmread(source.path, stop_before_pixels=True)
        syntax = str(meta.file_meta.get("TransferSyntaxUID", ""))
        if syntax in _LOSSY_TRANSFER_SYNTAXES:
            return LossyHistory(_LOSSY_TRANSFER_SYNTAXES[syntax])
        if meta.get("LossyImageCompression") == "01":
            methods = meta.get("LossyImageCompressionMethod", "ISO_10918_1")
            return LossyHistory(str(methods[0] if isinstance(methods, pydicom.multival.MultiValue) else methods))
        return None
    if isinstance(source, VideoFileSource):
        with av.open(str(source.path)) as container:
            codec = container.streams.video[0].codec_context.name
        return LossyHistory(_LOSSY_METHODS.get(codec, "ISO_14496_10"))
    return None


def _dicom_date_time(iso: str | None) -> tuple[str, str]:
    moment = datetime.fromisoformat((iso or datetime.now().astimezone().isoformat()).replace("Z", "+00:00"))
    local = moment.astimezone()
    return local.strftime("%Y%m%d"), local.strftime("%H%M%S")


def study_context(consultation: dict[str, Any], device_name: str) -> StudyContext:
    """The DICOM study of a consultation, as the server described it (PROTOCOL.md §1 `Consultation`)."""
    patient = consultation.get("patient") or {}
    date, time = _dicom_date_time(consultation.get("started_at") or consultation.get("requested_at"))
    expert = consultation.get("expert") or {}
    return StudyContext(
        patient_name=str(patient.get("name", ""))[:64],
        patient_id=str(patient.get("id", "")),
        study_instance_uid=consultation["study_uid"],
        study_date=date,
        study_time=time,
        exam_type=consultation["exam_type"],
        patient_birth_date=str(patient.get("birth_date") or "").replace("-", ""),
        patient_sex=str(patient.get("sex") or ""),
        accession_number=str(consultation.get("accession") or ""),
        expert_name=str(expert.get("name") or ""),
        institution_name=str((consultation.get("site") or {}).get("name", ""))[:64],
        device_name=device_name[:16],
    )


def still_capture_for(kit: CaptureKit, ring: FrameRing, consultation: dict[str, Any]) -> StillCapture:
    return StillCapture(
        ring,
        study_context(consultation, kit.device_name),
        kit.outbox,
        calibration=kit.calibration,
        source_lossy=kit.source_lossy,
        max_clip_seconds=kit.max_clip_seconds,
        name=consultation.get("id", ""),
    )


def spool_folder(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    return base
