"""Frame sources for the edge agent: a capture card, a recorded file, or the synthetic scanner."""

from edge_capture.errors import SourceError
from edge_capture.sources.base import FrameSource, open_source

__all__ = ["FrameSource", "SourceError", "open_source"]
