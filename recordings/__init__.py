"""Session recordings: MP4 plus timeline, resumable upload, trainer review (issue 4, not built yet)."""
