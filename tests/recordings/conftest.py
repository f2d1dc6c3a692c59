"""The media fixtures of the QC tests (synthetic scanners, a faulty MP4, pydicom-data cines), shared here: the
offline scoring of recording files is tested beside the recording format."""

from tests.qc.conftest import carotid, cine, faulty_mp4, probe_in_air, thyroid

__all__ = ["carotid", "cine", "faulty_mp4", "probe_in_air", "thyroid"]
