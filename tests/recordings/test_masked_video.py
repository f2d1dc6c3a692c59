"""recordings.masked_video: the banner blacked out of every frame of a recording, for the teaching export and the
server's review copy (the review copy end to end: tests/signaling_server/session_recordings/test_review_copies.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import av
import numpy as np
import pytest

from edge_capture.sources.synthetic import SyntheticSource
from qc.fov import Box
from recordings import errors, masked_video
from tests.recordings.test_teaching import scanner, write_recording  # noqa: F401  (fixture)


def test_masking_a_video_frame_blacks_luma_and_neutralises_chroma() -> None:
    planes = np.random.default_rng(1).integers(0, 256, (48 * 3 // 2, 64), np.uint8)
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    masked = masked_video.mask_video_frame(frame, [Box(0, 0, 64, 9)]).to_ndarray()
    luma, chroma = masked[:48], masked[48:].reshape(2, 24, 32)
    assert (luma[:9] == 16).all() and np.array_equal(luma[9:], planes[:48][9:])
    assert (chroma[:, :5] == 128).all() and np.array_equal(chroma[:, 5:], planes[48:].reshape(2, 24, 32)[:, 5:])
    assert np.array_equal(frame.to_ndarray(), planes)  # the decoded frame is left as it was


def test_a_review_copy_keeps_the_voice_and_is_private_or_leaves_nothing(
    scanner: SyntheticSource, tmp_path: Path  # noqa: F811
) -> None:
    write_recording(tmp_path / "media.mp4", scanner, 1.0)
    dest = tmp_path / "review" / "media.mp4"
    fractions: list[float] = []
    made = masked_video.write_review_copy(tmp_path / "media.mp4", dest, fractions.append)
    assert made.audio and made.video.frames == 30 and made.banners and made.banners[0].y == 0
    assert fractions and fractions[-1] == 1.0
    with av.open(str(dest)) as copy:
        assert [s.type for s in copy.streams] == ["video", "audio"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600 and stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in dest.parent.iterdir()) == ["media.mp4"]  # the partial file renamed onto it

    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(500))
    with pytest.raises(errors.NotRenderable):
        masked_video.write_review_copy(tmp_path / "broken.mp4", tmp_path / "review" / "broken.mp4", fractions.append)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["media.mp4"]
