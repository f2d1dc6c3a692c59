"""A session's report from a recording folder: segments on one clock, the timeline's captures and links."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qc.score import OSAUS_ITEMS
from recordings import timeline as tl
from recordings.media import MediaError
from recordings.offline import ScoreOptions, row_metrics, score_path
from recordings.session import read_timeline, recording_segments

SECOND_SEGMENT_AFTER = 10.5  # seconds between the two segments' headers (the 10 s video, then a restart)


def capture(t: float, capture_id: str, structure: str) -> tl.Capture:
    return tl.Capture(t, capture_id, f"1.2.3.{t}", "still", labels={"structure": structure, "plane": "transverse"})


def write_timeline(path: Path, segment: int) -> None:
    lines = [
        tl.Header("c1", 1.78e12 + 1000 * SECOND_SEGMENT_AFTER * segment, 640, 360, 30.0, segment=segment),
        tl.Join(0.1, "p-expert", "expert", "Dr Expert"),
        tl.Join(0.1, "p-student", "observer"),
        capture(1.0, "cap-rt", "thyroid right lobe"),
        capture(1.5, "cap-is", "thyroid isthmus"),
        tl.Qc(3.0, "frozen", "raised", "image frozen for 2 s"),
        tl.Qc(4.0, "frozen", "cleared", "image frozen for 2 s"),
    ]
    lines += [
        tl.Link(float(s), (tl.ViewerLink("p-expert", 30.0, 3000.0, 40.0, 0.0), tl.ViewerLink("p-student", 4.0)))
        for s in range(1, 10)
    ]
    path.write_text("\n".join(tl.encode(line) for line in lines) + "\n{not json\n", encoding="utf-8")


@pytest.fixture(scope="module")
def recording(faulty_mp4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recording")
    for segment, suffix in ((0, ""), (1, ".1")):
        shutil.copy(faulty_mp4, folder / f"media{suffix}.mp4")
        write_timeline(folder / f"timeline{suffix}.jsonl", segment)
    return folder


def test_a_recording_folder(recording: Path) -> None:
    report = score_path(recording, ScoreOptions(osaus=dict.fromkeys(OSAUS_ITEMS, 4)))
    assert report["kind"] == "recording" and report["exam"] == "thyroid"
    assert len(report["media"]) == 2 and report["timeline_lines_skipped"] == 2
    # the second segment starts at its header's offset (the review page's rule), not where the first video ends
    assert report["segments"] == [0.0, SECOND_SEGMENT_AFTER]
    starts = [run["start"] for run in report["freezes"]]
    assert starts == [pytest.approx(2.0, abs=0.05), pytest.approx(12.5, abs=0.05)]  # the second on the session clock
    assert len(report["no_contact"]) == 2 and len(report["dark"]) == 2
    first, second = report["media"][0]["no_contact"][0], report["media"][1]["no_contact"][0]
    assert second["start"] == pytest.approx(first["start"] + SECOND_SEGMENT_AFTER, abs=1e-3)
    assert report["live_alerts"][0] == {"t": 3.0, "code": "frozen", "state": "raised", "text": "image frozen for 2 s"}
    assert report["live_alerts"][-1]["t"] == 14.5
    checklist = {item["key"]: item["capture"] for item in report["completeness"]["items"]}
    assert checklist["right_transverse"] == "cap-rt" and checklist["left_transverse"] is None
    assert report["completeness"]["value"] == pytest.approx(2 / 6, abs=1e-3)
    link = report["link"]
    assert link["streams"] == 1 and link["seconds"] == 18 and link["rtt_p95_ms"] == 40.0  # the expert only
    score = report["score"]
    assert set(score["weights_used"]) == {"completeness", "image", "link", "osaus"}
    assert 0 <= score["total"] <= 1
    assert set(report["image"]) == {"gain", "tgc", "depth", "focus", "visibility"}
    assert report["image"]["depth"] is None  # an MP4 carries no calibration


def test_a_bare_video_has_no_checklist(faulty_mp4: Path) -> None:
    report = score_path(faulty_mp4, ScoreOptions(exam="thyroid", depth_mm=40.0))
    assert report["completeness"] is None and report["link"] is None
    assert report["image"]["depth"]["score"] == 5.0
    assert set(report["score"]["weights_used"]) == {"image"}


def test_segments_and_timelines(recording: Path, tmp_path: Path) -> None:
    assert [(m.name, t and t.name) for m, t in recording_segments(recording)] == [
        ("media.mp4", "timeline.jsonl"), ("media.1.mp4", "timeline.1.jsonl")]  # fmt: skip
    timeline = read_timeline(recording / "timeline.jsonl")  # the line that is no JSON is left out and counted
    assert timeline.header.segment == 0 and isinstance(timeline.events[0], tl.Join) and timeline.skipped == 1
    with pytest.raises(tl.TimelineError):
        read_timeline(recording / "timeline.jsonl", skip_bad=False)
    with pytest.raises(MediaError):
        recording_segments(tmp_path)


def test_a_report_as_a_qc_results_row(faulty_mp4: Path) -> None:
    row = row_metrics(score_path(faulty_mp4, ScoreOptions(exam="thyroid")))
    assert row["completeness"] is None and row["link"] is None
    assert row["image"]["gain"]["score"] == 5.0 and 0 <= row["frames"]["saturation"]["median"] <= 1
    assert all(isinstance(v["median"], float) for v in row["frames"].values())
    assert row["version"] == 2 and row["segments"] == [0.0] and row["freezes"] == [] and row["alerts"] == []
    assert row["frozen_image"] and all(f["end"] > f["start"] for f in row["frozen_image"])
    assert 0 <= row["score"] <= 1
