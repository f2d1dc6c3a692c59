"""The content-addressed store on a real folder: layout, idempotent writes, no half files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from signaling_server.dicomstore.blobs import BlobStore


async def test_put_read_exists_discard(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "dicom")
    store.open()
    data = b"DICM" * 1000
    sha = hashlib.sha256(data).hexdigest()
    assert not store.exists(sha)
    assert await store.put(data) == (sha, True)
    assert store.path_for(sha) == tmp_path / "dicom" / sha[:2] / sha[2:4] / f"{sha}.dcm"
    assert store.exists(sha) and await store.read(sha) == data
    assert await store.put(data, sha) == (sha, False)  # the same content: nothing written twice
    assert store.count() == 1 and list(store.tmp.iterdir()) == []
    await store.discard(sha)
    assert not store.exists(sha) and store.count() == 0
    await store.discard(sha)  # already gone: fine


async def test_interrupted_writes_are_swept_and_names_are_checked(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "dicom")
    store.open()
    (store.tmp / "tmpabc.part").write_bytes(b"half a file")
    BlobStore(tmp_path / "dicom").open()
    assert list(store.tmp.iterdir()) == []
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")
