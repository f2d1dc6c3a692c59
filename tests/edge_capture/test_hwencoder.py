"""The start-up probe for a hardware H.264 encoder: on a PC without one (this machine) it falls back to x264
and says why."""

from __future__ import annotations

from pathlib import Path

from edge_capture.hwencoder import probe_encoder, try_open


def test_without_a_render_node_the_edge_uses_x264_and_says_why(tmp_path: Path) -> None:
    nodes = str(tmp_path / "renderD*")  # a directory with no render node in it
    choice = probe_encoder("ultrafast", render_nodes=nodes, available={"libx264", "h264_vaapi", "h264_qsv"})
    assert (choice.label, choice.hardware) == ("x264 ultrafast", None)
    assert f"VAAPI: no render node ({nodes})" in choice.reason and f"QSV: no render node ({nodes})" in choice.reason


def test_an_encoder_missing_from_the_build_is_named(tmp_path: Path) -> None:
    choice = probe_encoder("veryfast", render_nodes=str(tmp_path / "renderD*"), available={"libx264"})
    assert choice.label == "x264 veryfast" and choice.hardware is None
    for name in ("h264_vaapi", "h264_qsv"):
        assert f"{name} is not in this PyAV build" in choice.reason


def test_a_render_node_without_a_working_encoder_falls_back(tmp_path: Path) -> None:
    # a render node is there, but opening the encoder for real (a tiny frame) fails: no GPU behind it
    (tmp_path / "renderD128").touch()
    choice = probe_encoder("ultrafast", render_nodes=str(tmp_path / "renderD*"), available={"h264_vaapi", "h264_qsv"})
    assert choice.label == "x264 ultrafast" and choice.hardware is None
    assert "VAAPI: h264_vaapi did not open" in choice.reason and "QSV: h264_qsv did not open" in choice.reason


def test_the_open_check_is_real() -> None:
    assert try_open("libx264") is None  # what does open, encodes the tiny frame
    assert try_open("no_such_encoder") is not None
