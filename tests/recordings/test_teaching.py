"""recordings.teaching and its routes: the teaching export leaves no patient name in pixels (banner masked) or
metadata. Real recordings written by the edge's own MP4 writer from synthetic scanner screens, real PyAV, the real
app on SQLite and PostgreSQL, real STOW-RS, real dciodvfy."""

from __future__ import annotations

import asyncio
import io
import json
import stat
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut

from edge_capture.dicom.calibration import for_synthetic
from edge_capture.dicom.ultrasound import build_clip, build_still
from edge_capture.recording.mp4 import Mp4Writer, VideoSettings
from edge_capture.sources.synthetic import SyntheticSource
from qc.fov import Box
from qc.labels import CaptureLabels
from recordings import errors as recordings_errors
from recordings import teaching
from recordings import timeline as tl
from recordings.deidentify import UidMap
from signaling_server import cli, errors
from signaling_server.appkeys import SETTINGS
from signaling_server.training.teaching_exports import ExportJob, ExportState, TeachingExports, export_state
from tests.conftest import Api
from tests.edge_capture.dicom.conftest import context, dciodvfy, frames_of
from tests.recordings.sessions import live_consultation, record_session, thyroid_events, timeline_bytes, upload
from tests.recordings.test_deidentify import best_match, rendered, texts
from tests.signaling_server.dicomstore.objects import multipart

NAME, PATIENT_ID = "MORGAN^ALEXA", "PID-551937"
SECRETS = ("MORGAN", "ALEXA", PATIENT_ID, "Eve Expert", "Olga Observer", "Sono A", "user-0042")
CLOCK = 1_780_000_000.0
WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 30, 3.0
FRAME_PTS = 3000  # 1/90000 s per frame at 30 fps, the edge's media clock
THYROID = CaptureLabels(structure="thyroid right lobe", plane="transverse")


@pytest.fixture(scope="module")
def scanner() -> SyntheticSource:
    return SyntheticSource("thyroid", WIDTH, HEIGHT, FPS, cycle_seconds=1.0, paced=False, patient=NAME,
                           patient_id=PATIENT_ID)  # fmt: skip


def write_recording(path: Path, scanner: SyntheticSource, seconds: float, first: int = 0) -> None:
    """A segment as the edge writes it (edge_capture/recording/mp4.py): H.264 from screens, AAC voice."""
    writer = Mp4Writer(path, scanner.width, scanner.height, FPS, VideoSettings(preset="ultrafast"), audio=True)
    tone = (3000 * np.sin(np.arange(960) * 2 * np.pi * 440 / 48_000)).astype(np.int16)
    for n in range(round(seconds * FPS)):
        screen = scanner.render(first + n, CLOCK + (first + n) / FPS)  # the clock ticks, the banner stays
        writer.write_video(cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420), n * FRAME_PTS)
        if n % 3 == 0:
            writer.write_voice(np.repeat(tone, 2), 1024 + n * 1600)
    writer.close()


@pytest.fixture(scope="module")
def recording_mp4(scanner: SyntheticSource, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("edge") / "media.mp4"
    write_recording(path, scanner, SECONDS)
    return path.read_bytes()


def identifying_events() -> list[tl.Event]:
    """The review sessions' events, with names, and a chat line naming the patient."""
    return [
        *thyroid_events(),
        tl.Join(0.1, "p-eve", "expert", "Eve Expert"),
        tl.Chat(1.3, f"Is this {NAME} ({PATIENT_ID})? Alexa's left lobe?", "Eve Expert", "expert", "user-0042"),
        tl.Join(2.0, "p-olga", "observer", "Olga Observer"),
        tl.Leave(2.9, "p-olga", "observer", "Olga Observer"),
        tl.Capture(2.1, "c3", "1.2.826.0.1.3680043.8.498.1", "still", 1, {"side": "R", "note": f"{NAME}"}),
    ]


def decoded(data: bytes) -> tuple[list[tuple[float, np.ndarray]], int]:
    """(time, BGR frame) of every frame, and how many audio streams the MP4 has."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        frames = [(float(f.time), f.to_ndarray(format="bgr24")) for f in container.decode(stream)]
        return frames, len(container.streams.audio)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return 10 * np.log10(255**2 / max(error, 1e-9))


def without_secrets(text: str) -> list[str]:
    return [s for s in SECRETS if s.casefold() in text.casefold()]


async def get_bytes(api: Api, path: str) -> tuple[int, bytes, str]:
    async with api.session.get(api.base + path) as r:
        return r.status, await r.read(), r.headers.get("Content-Type", "")


async def finished(api: Api, export_id: str, timeout: float = 120.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            status, answer = await api.get(f"/api/v1/teaching-exports/{export_id}")
            assert status == 200, answer
            if answer["state"] != "running":
                return dict(answer)
            await asyncio.sleep(0.1)


# ---- pure parts ---------------------------------------------------------------------------------------------------


def test_the_timeline_keeps_teaching_events_and_loses_identifying_content() -> None:
    events = identifying_events()
    timeline = tl.decode_timeline(timeline_bytes("c0ffee42", events))
    uids = UidMap()
    lines, removed = teaching.deidentify_timeline(timeline, 1_789_999_990_000.0, uids)
    header, rest = lines[0], [e for e in lines[1:] if isinstance(e, tl.Event)]
    assert isinstance(header, tl.Header)
    assert (header.consultation_id, header.started_at_ms) == (teaching.EXPORT_ID, 10_000.0)
    assert [type(e) for e in rest] == [type(e) for e in events] and [e.t for e in rest] == [e.t for e in events]
    encoded = "\n".join(tl.encode(line) for line in lines)
    assert without_secrets(encoded) == [] and "c0ffee42" not in encoded
    chats = [e for e in rest if isinstance(e, tl.Chat)]
    assert {(c.text, c.name, c.from_) for c in chats} == {(teaching.REMOVED_CHAT_TEXT, "expert", None)}
    assert all(e.name == e.role for e in rest if isinstance(e, tl.Join | tl.Leave))
    captures = [e for e in rest if isinstance(e, tl.Capture)]
    assert captures[0].labels == thyroid_events()[4].labels  # type: ignore[attr-defined]
    assert captures[2].labels == {"side": "R"}  # a key the edge does not write is dropped
    assert captures[0].sop_uid == captures[2].sop_uid != "1.2.826.0.1.3680043.8.498.1"  # remapped consistently
    kept = [e for e in rest if isinstance(e, tl.Mark | tl.Pointer | tl.Qc | tl.Link | tl.Clear)]
    assert kept == [e for e in events if isinstance(e, tl.Mark | tl.Pointer | tl.Qc | tl.Link | tl.Clear)]
    assert removed == {"chat_text": 2, "names": 5, "capture_uids": 3, "capture_labels": 1}


def test_an_export_is_done_only_with_its_manifest_and_interrupted_without_a_job() -> None:
    job = ExportJob("e" * 32, "r1")
    assert export_state(job, False) == (ExportState.RUNNING, "")
    assert export_state(None, False) == (ExportState.FAILED, "interrupted")
    assert export_state(None, True) == (ExportState.DONE, "")
    job.finish(ExportState.FAILED, "bad media")
    assert export_state(job, False) == (ExportState.FAILED, "bad media")
    with pytest.raises(errors.InvalidTransition, match="cannot become"):
        job.finish(ExportState.DONE)


async def test_a_server_that_stops_stops_its_export_which_then_reads_interrupted(
    recording_mp4: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "recording"
    source.mkdir()
    (source / "media.mp4").write_bytes(recording_mp4)
    exports = TeachingExports(tmp_path / "teaching")
    job = exports.start("r1", source)
    with pytest.raises(errors.ExportBusy):
        exports.start("r2", source)
    await exports.close()  # as the app's cleanup does: the thread stops at its next progress report
    assert (job.state, job.reason) == (ExportState.FAILED, "the server stopped during the export")
    assert list((tmp_path / "teaching" / job.id).iterdir()) == []  # what it had written is gone
    restarted = await TeachingExports(tmp_path / "teaching").status(job.id)
    assert (restarted["state"], restarted["reason"]) == ("failed", "interrupted")


def test_two_segments_keep_their_offsets_and_a_broken_one_leaves_nothing(
    scanner: SyntheticSource, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recording"
    folder.mkdir()
    for k, (first, start_ms) in enumerate([(0, 1_790_000_000_000.0), (45, 1_790_000_004_500.0)]):
        write_recording(folder / ("media.mp4" if k == 0 else f"media.{k}.mp4"), scanner, 1.0, first)
        header = tl.Header("c0ffee42", start_ms, WIDTH, HEIGHT, FPS, segment=k)
        lines: list[tl.Header | tl.Event] = [header, tl.Chat(0.5, f"{NAME} again", "Eve Expert", "expert", "user-0042")]
        (folder / ("timeline.jsonl" if k == 0 else f"timeline.{k}.jsonl")).write_text(
            "".join(tl.encode(line) + "\n" for line in lines)
        )
    assert cli.main(["teaching-export", str(folder), "-o", str(tmp_path / "out")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest == json.loads((tmp_path / "out" / teaching.MANIFEST).read_text())
    assert [s["segment"] for s in manifest["segments"]] == [0, 1]
    assert all(s["frames"] == 30 and s["banners"][0]["y"] == 0 for s in manifest["segments"])
    headers = [tl.decode_timeline((tmp_path / "out" / s["timeline"]).read_bytes()).header for s in manifest["segments"]]
    assert [h.started_at_ms for h in headers] == [0.0, 4500.0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [teaching.MANIFEST, *(f["name"] for f in manifest["files"])]
    )
    # into a folder that is not empty: refused before anything is written
    assert cli.main(["teaching-export", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "conflict"
    # a segment that does not decode: the export fails and takes back what it wrote
    (folder / "media.1.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(500))
    with pytest.raises(recordings_errors.NotRenderable):
        teaching.export_recording(folder, tmp_path / "broken")
    assert list((tmp_path / "broken").iterdir()) == []


def test_the_command_line_refuses_a_file_that_is_not_dicom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    upload = tmp_path / "scan.dcm"
    upload.write_bytes(b"PATIENT: MORGAN^ALEXA\n" * 20)
    assert cli.main(["teaching-export", str(upload), "-o", str(tmp_path / "out.dcm")]) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["error"] == "invalid_dicom" and "not a DICOM Part 10 object" in error["message"]
    assert not (tmp_path / "out.dcm").exists()


# ---- stills ---------------------------------------------------------------------------------------------------------


def edge_still(scanner: SyntheticSource, calibrated: bool = True) -> pydicom.Dataset:
    (frame,) = frames_of([scanner.render(0, CLOCK)])
    study = context("thyroid", patient_name=NAME, patient_id=PATIENT_ID)
    return build_still(frame, study, THYROID, calibration=for_synthetic(scanner) if calibrated else None)


def part10(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def dciodvfy_errors(path: Path) -> set[str]:
    return {line for line in dciodvfy(path) if line.startswith("Error")}


def check_clean(original: pydicom.Dataset, data: bytes, scanner: SyntheticSource, tmp_path: Path) -> pydicom.Dataset:
    """No name or ID anywhere, the banner masked, the image untouched, dciodvfy without errors."""
    path = tmp_path / "teaching.dcm"
    path.write_bytes(data)
    assert dciodvfy_errors(path) == set()
    clean = pydicom.dcmread(path)
    found = [text for text in texts(clean) if without_secrets(text) or "North" in text]  # North: the institution
    assert found == []
    assert clean.PatientIdentityRemoved == "YES" and clean.BurnedInAnnotation == "NO"
    assert clean.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert clean.LossyImageCompression == original.LossyImageCompression
    assert clean.SOPInstanceUID != original.SOPInstanceUID and clean.SOPClassUID == original.SOPClassUID
    before = original.pixel_array if "NumberOfFrames" in original else original.pixel_array[np.newaxis]
    after = clean.pixel_array if "NumberOfFrames" in clean else clean.pixel_array[np.newaxis]
    template = rendered(NAME, scanner.layout.font_scale, scanner.layout.thickness)
    banner = scanner.layout.banner
    for was, now in zip(before, after, strict=True):
        assert best_match(cv2.cvtColor(was, cv2.COLOR_RGB2GRAY), template)[0] > 0.9
        assert best_match(cv2.cvtColor(now, cv2.COLOR_RGB2GRAY), template)[0] < 0.5
        assert not now[banner.slices].any()
        assert np.array_equal(was[scanner.fov.slices], now[scanner.fov.slices])
    return clean


@pytest.mark.parametrize("calibrated", [True, False], ids=["regions", "estimated"])
def test_a_still_is_masked_scrubbed_and_valid(
    scanner: SyntheticSource, tmp_path: Path, calibrated: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    original = edge_still(scanner, calibrated)
    (tmp_path / "still.dcm").write_bytes(part10(original))
    assert cli.main(["teaching-export", str(tmp_path / "still.dcm"), "-o", str(tmp_path / "clean.dcm")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["kind"] == "still" and manifest["still"]["fov"] == ("region" if calibrated else "estimated")
    assert without_secrets(json.dumps(manifest)) == []
    check_clean(original, (tmp_path / "clean.dcm").read_bytes(), scanner, tmp_path)


def test_a_still_without_a_banner_is_exported_with_a_warning(
    scanner: SyntheticSource, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = edge_still(scanner)
    pixels = original.pixel_array.copy()
    pixels[: scanner.fov.y] = 0  # a screen without its banner
    original.set_pixel_data(pixels, "RGB", 8, generate_instance_uid=False)
    (tmp_path / "still.dcm").write_bytes(part10(original))
    assert cli.main(["teaching-export", str(tmp_path / "still.dcm"), "-o", str(tmp_path)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["still"]["banners"] == [] and manifest["warnings"] == [teaching.NO_BANNER]
    assert manifest["files"][0]["name"] == "teaching.dcm" and (tmp_path / "teaching.dcm").is_file()


def test_a_jpeg_clip_is_masked_in_every_frame_and_written_uncompressed(
    scanner: SyntheticSource, tmp_path: Path
) -> None:
    frames = frames_of([scanner.render(k, CLOCK + k / 3) for k in range(8)])
    study = context("thyroid", patient_name=NAME, patient_id=PATIENT_ID)
    original = build_clip(frames, study, THYROID, calibration=for_synthetic(scanner))
    exported = teaching.deidentify_still(part10(original))
    assert exported.frames == 8 and exported.fov == "region"
    clean = check_clean(pydicom.dcmread(io.BytesIO(part10(original))), exported.data, scanner, tmp_path)
    assert clean.NumberOfFrames == 8 and clean.PhotometricInterpretation == "RGB"
    assert clean.LossyImageCompressionMethod == "ISO_10918_1"  # the JPEG step stays in its history


def test_a_real_palette_still_with_regions(tmp_path: Path) -> None:
    source = Path(str(get_testdata_file("OBXXXX1A.dcm")))  # Philips: ID and date in a banner above the regions
    original = pydicom.dcmread(source)
    exported = teaching.deidentify_still(source.read_bytes())
    assert exported.fov == "region" and exported.banners == (Box(0, 0, 800, 60),)  # the region starts at row 60
    (tmp_path / "ob.dcm").write_bytes(exported.data)
    assert dciodvfy_errors(tmp_path / "ob.dcm") <= dciodvfy_errors(source)  # none the source lacks (Laterality)
    clean = pydicom.dcmread(tmp_path / "ob.dcm")
    assert [text for text in texts(clean) if "142825" in text or "Healthcare" in text] == []
    assert clean.PhotometricInterpretation == "RGB" and "RedPaletteColorLookupTableData" not in clean
    expanded = (apply_color_lut(original.pixel_array, original) >> 8).astype(np.uint8)
    assert not clean.pixel_array[:60].any() and np.array_equal(clean.pixel_array[60:], expanded[60:])


# ---- the API ------------------------------------------------------------------------------------------------------


async def test_a_trainer_exports_a_recording_without_the_patient_in_pixels_or_metadata(
    people: Any, scanner: SyntheticSource, recording_mp4: bytes
) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    admin, edge = await open_api("admin"), await open_api(bearer=world.device_a_credential)
    recording = await record_session(sono, expert, edge, identifying_events(), recording_mp4)
    path = f"/api/v1/recordings/{recording['id']}/teaching-export"

    status, refused = await sono.post(path)
    assert (status, refused["error"]) == (403, "forbidden")
    status, started = await trainer.post(path)
    assert status == 202 and started["state"] == "running" and started["recording_id"] == recording["id"]
    status, served = await admin.post(f"/api/v1/users/{world.users['admin']}/sites", {"site_id": world.site_a})
    assert status == 201, served  # an admin exports the recordings of the sites they serve
    status, busy = await admin.post(path)  # while the first runs (about a second)
    assert (status, busy["error"]) == (409, "export_busy") and started["id"] in busy["message"]

    answer = await finished(trainer, started["id"])
    assert answer["state"] == "done" and answer["progress"] == 1.0 and answer["reason"] is None, answer
    exported_folder = client.app[SETTINGS].data_dir / "teaching" / started["id"]  # the owner's only (SECURITY §9)
    assert mode_of(exported_folder.parent) == mode_of(exported_folder) == 0o700
    assert {p.name: mode_of(p) for p in exported_folder.iterdir()} == {
        "media.mp4": 0o600, "timeline.jsonl": 0o600, teaching.MANIFEST: 0o600
    }
    manifest = answer["manifest"]
    (segment,) = manifest["segments"]
    assert segment["frames"] == round(SECONDS * FPS) and segment["banners"] == [
        {"x": 0, "y": 0, "w": WIDTH, "h": segment["banners"][0]["h"]}
    ]
    assert scanner.layout.banner.h <= segment["banners"][0]["h"] <= scanner.fov.y
    assert {f["name"] for f in manifest["files"]} == {"media.mp4", "timeline.jsonl"}

    status, media, kind = await get_bytes(trainer, f"/api/v1/teaching-exports/{started['id']}/files/media.mp4")
    assert status == 200 and kind == "video/mp4"
    before, before_audio = decoded(recording_mp4)
    after, after_audio = decoded(media)
    assert (before_audio, after_audio) == (1, 0)  # the voices are not exported
    assert len(after) == len(before) == round(SECONDS * FPS)
    assert [round(t, 3) for t, _ in after] == [round(t, 3) for t, _ in before]  # the timeline still lines up
    template = rendered(NAME, scanner.layout.font_scale, scanner.layout.thickness)
    original_score = max(best_match(frame, template)[0] for _, frame in before[::10])
    exported_score = max(best_match(frame, template)[0] for _, frame in after)
    assert original_score > 0.9 and exported_score < min(0.6, original_score - 0.3)
    fov = scanner.fov
    for (_, was), (_, now) in zip(before, after, strict=True):
        assert psnr(was[fov.slices], now[fov.slices]) > 28  # the image: codec noise only
        assert now[: scanner.layout.banner.h].mean() < 2

    status, raw, _ = await get_bytes(trainer, f"/api/v1/teaching-exports/{started['id']}/files/timeline.jsonl")
    assert status == 200
    exported = tl.decode_timeline(raw)
    text = raw.decode() + json.dumps(answer)
    assert without_secrets(text) == [] and recording["consultation_id"] not in text
    assert sum(isinstance(e, tl.Mark) for e in exported.events) == 1
    assert [e.labels for e in exported.events if isinstance(e, tl.Capture)][:2] == [
        e.labels for e in thyroid_events() if isinstance(e, tl.Capture)
    ]

    for name, code in (("secret.txt", 400), ("media.3.mp4", 404), ("..%2F..%2Fteleus.sqlite3", 400)):
        status, error = await trainer.get(f"/api/v1/teaching-exports/{started['id']}/files/{name}")
        assert status == code and error["error"] == {400: "invalid_request", 404: "not_found"}[code], (name, error)
    status, error = await sono.get(f"/api/v1/teaching-exports/{started['id']}")
    assert (status, error["error"]) == (403, "forbidden")


async def test_a_recording_not_complete_is_refused_and_a_stopped_export_reads_interrupted(
    people: Any, recording_mp4: bytes
) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    edge = await open_api(bearer=world.device_a_credential)
    cid = await live_consultation(sono, expert)
    status, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    assert status == 201
    await upload(edge, recording["id"], "media.mp4", recording_mp4)
    status, error = await trainer.post(f"/api/v1/recordings/{recording['id']}/teaching-export")
    assert (status, error["error"]) == (409, "recording_not_complete") and "recording" in error["message"]

    status, error = await trainer.get(f"/api/v1/teaching-exports/{'0' * 32}")
    assert (status, error["error"]) == (404, "not_found")
    folder = client.app[SETTINGS].data_dir / "teaching" / ("a" * 32)  # a server stopped during an export
    folder.mkdir(parents=True)
    status, answer = await trainer.get(f"/api/v1/teaching-exports/{'a' * 32}")
    assert status == 200 and (answer["state"], answer["reason"], answer["manifest"]) == ("failed", "interrupted", None)
    status, error = await trainer.get(f"/api/v1/teaching-exports/{'a' * 32}/files/media.mp4")
    assert (status, error["error"]) == (404, "not_found")


async def test_a_stored_still_is_served_de_identified(people: Any, scanner: SyntheticSource, tmp_path: Path) -> None:
    client, world, open_api = people
    edge = await open_api(bearer=world.device_a_credential)
    original = edge_still(scanner)
    content_type, body = multipart([part10(original)])
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    async with edge.session.post(edge.base + "/dicomweb/studies", data=body, headers=headers) as r:
        assert r.status == 200, await r.text()
    uid = original.SOPInstanceUID
    for username in ("trainer", "expert"):
        status, data, kind = await get_bytes(await open_api(username), f"/api/v1/teaching/instances/{uid}")
        assert status == 200 and kind == "application/dicom"
        check_clean(original, data, scanner, tmp_path)
    status, error = await (await open_api("sono_a")).get(f"/api/v1/teaching/instances/{uid}")
    assert (status, error["error"]) == (403, "forbidden")
    status, error = await (await open_api("trainer")).get("/api/v1/teaching/instances/1.2.3.4")
    assert (status, error["error"]) == (404, "not_found")
