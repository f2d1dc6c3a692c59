"""Session recordings: MP4 plus timeline, resumable upload (RECORDINGS.md), trainer review."""
