"""`teleus qc score`: valid JSON for a video and a DICOM file, stable errors, a progress bar."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from recordings import cli


def score(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    status = cli.main(["score", *argv])
    return status, json.loads(capsys.readouterr().out)


def test_an_mp4(faulty_mp4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = score(capsys, str(faulty_mp4), "--exam", "thyroid", "--osaus", *"4 4 3 4 5 4 3".split())
    assert status == 0
    assert report["kind"] == "mp4" and len(report["freezes"]) == 1
    assert report["score"]["parts"]["osaus"]["mean"] == pytest.approx(27 / 7, abs=1e-3)
    assert 0 <= report["score"]["total"] <= 1


def test_a_dicom_cine(cine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = score(capsys, str(cine), "--indent", "0")
    assert status == 0
    assert report["kind"] == "dicom" and report["freezes"] == [] and report["media"][0]["frames"] == 120


def test_errors_are_stable_codes(tmp_path: Path, cine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, error = score(capsys, str(tmp_path / "missing.mp4"))
    assert status == 2 and error["error"] == "unreadable" and "missing.mp4" in error["message"]
    status, error = score(capsys, str(cine), "--weights", "[1, 2]")
    assert status == 64 and error["error"] == "bad_arguments" and "JSON object" in error["message"]
    status, error = score(capsys, str(cine), "--osaus", *"4 4 3 4 9 4 3".split())
    assert status == 64 and "1–5" in error["message"]


def test_the_progress_bar(cine: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    assert cli.run(parser.parse_args(["score", str(cine), "--progress"]), out, err) == 0
    assert err.getvalue().endswith("] 100 %\n") and "\r" in err.getvalue()
    json.loads(out.getvalue())


def test_the_parser_defaults_are_the_scorers() -> None:
    from qc.offline import OfflineConfig

    assert cli.METRICS_PER_SECOND == OfflineConfig.metrics_per_second
    assert cli.MIN_FROZEN_SECONDS == OfflineConfig.min_frozen_seconds
