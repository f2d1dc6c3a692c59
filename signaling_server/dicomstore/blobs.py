"""The content-addressed DICOM object store: one file per distinct content, named by its SHA-256.

Layout under `settings.data_dir / "dicom"`: `ab/cd/<sha256>.dcm`, plus `tmp/` for writes in progress. A write goes
to a temporary file, is flushed and fsynced, then renamed into place (and the folder fsynced), so a reader never
sees half a file and a crash leaves at most a stray file in `tmp/`, swept at the next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from recordings.private_files import make_private_dirs, private_dir
from signaling_server.appkeys import SETTINGS

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def open(self) -> None:
        """Create the folders and sweep what an interrupted write left behind."""
        private_dir(self.root)
        private_dir(self.tmp)
        for stray in self.tmp.iterdir():
            log.warning("removing an unfinished write %s", stray.name)
            stray.unlink(missing_ok=True)

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.dcm"

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    async def put(self, data: bytes, sha256: str | None = None) -> tuple[str, bool]:
        """Store `data`; returns (sha256, created) where created is False when that content was already there."""
        return await asyncio.to_thread(self.put_sync, data, sha256)

    def put_sync(self, data: bytes, sha256: str | None = None) -> tuple[str, bool]:
        digest = sha256 or sha256_of(data)
        final = self.path_for(digest)
        if final.is_file():
            return digest, False
        make_private_dirs(final.parent)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, suffix=".part")  # 0600, kept by the rename
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, final)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return digest, True

    async def read(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.path_for(sha256).read_bytes)

    async def discard(self, sha256: str) -> None:
        """Remove a blob this process has just written and that nothing references (a failed ingest)."""
        await asyncio.to_thread(self.path_for(sha256).unlink, missing_ok=True)

    def count(self) -> int:
        """How many objects are stored (for tests and the admin's curiosity; walks the tree)."""
        return sum(1 for _ in self.root.glob("??/??/*.dcm"))


BLOBS = web.AppKey("dicom_blobs", BlobStore)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def blob_store(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the store under data_dir/dicom."""
    store = BlobStore(app[SETTINGS].data_dir / "dicom")
    await asyncio.to_thread(store.open)
    app[BLOBS] = store
    yield
