"""The repairs the edge's sealed spools need: a file a killed recorder left torn is finished (:func:`finish_at`), a
file an older version left in clear is sealed (:func:`seal_in_place`), and a new spool key re-seals every file under
it (:func:`new_key`, ``teleus edge --new-spool-key``). Each rewrite is atomic (a temporary file, fsync, rename,
fsync of the folder) or, for :func:`finish_at`, cuts only what was never whole.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from edge_capture.errors import SealError
from edge_capture.sealing.keys import Keyring, SpoolKey, load, save
from edge_capture.sealing.sealed import SealedReader, SealedWriter, fsync_folder, is_sealed, seal_record

logger = logging.getLogger(__name__)

COPY_BLOCK = 1 << 20


def finish_at(path: Path, keys: Keyring, end: int) -> None:
    """Keep the first ``end`` plaintext bytes of a growing or torn file and seal its end (recovery after a kill:
    the recording's files are then whole and final). A record cut in the middle is sealed again, shorter."""
    with SealedReader(path, keys) as view:
        if end > view.size:
            raise ValueError(f"{path} holds {view.size} bytes, not {end}")
        if view.finished and end == view.size:
            return
        if end == view.size:
            cut, tail, tail_start = view.records_end, b"", end
        else:
            tail_start, cut = view.record_at(end)
            tail = view.read_at(tail_start, end - tail_start)
        header, key = view.header, view.key
    with open(path, "r+b") as out:
        out.truncate(cut)
        out.seek(cut)
        if tail:
            out.write(seal_record(key, header, tail_start, tail))
        out.write(seal_record(key, header, end, b""))
        out.flush()
        os.fsync(out.fileno())


def _replace(temporary: Path, path: Path) -> None:
    os.replace(temporary, path)
    fsync_folder(path.parent)


def seal_in_place(path: Path, key: SpoolKey, length: int | None = None) -> None:
    """A file in clear (left by a version that did not seal) becomes a finished sealed file, its first ``length``
    bytes (all of it when None), atomically."""
    temporary = path.with_name(f".{path.name}.sealing.tmp")
    writer = SealedWriter(temporary, key)
    try:
        with open(path, "rb") as source:
            left = os.fstat(source.fileno()).st_size if length is None else length
            while left > 0 and (block := source.read(min(COPY_BLOCK, left))):
                writer.write(block)
                left -= len(block)
    except BaseException:
        writer.abandon()
        temporary.unlink(missing_ok=True)
        raise
    writer.close()
    _replace(temporary, path)


def reseal(path: Path, keys: Keyring, key: SpoolKey) -> None:
    """The file sealed again under ``key``, atomically; a growing (unfinished) file stays unfinished."""
    temporary = path.with_name(f".{path.name}.sealing.tmp")
    with SealedReader(path, keys) as view:
        writer = SealedWriter(temporary, key)
        try:
            for offset in range(0, view.size, COPY_BLOCK):
                writer.write(view.read_at(offset, COPY_BLOCK))
        except BaseException:
            writer.abandon()
            temporary.unlink(missing_ok=True)
            raise
        if view.finished:
            writer.close()
        else:
            writer.abandon()
            _fsync_file(temporary)
    _replace(temporary, path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reseal_all(folders: Iterable[Path], keys: Keyring) -> int:
    """Every sealed file under ``folders`` not yet under the current key, re-sealed under it; returns how many.
    A file that cannot be opened (another key, damage) is logged and left as it is."""
    resealed = 0
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else ():
            if not is_sealed(path):
                continue
            try:
                with SealedReader(path, keys) as view:
                    if view.key.id == keys.current.id:
                        continue
                reseal(path, keys, keys.current)
                resealed += 1
            except SealError as exc:
                logger.warning("spool key: %s left as it is: %s", path, exc)
    return resealed


def new_key(path: Path, spools: Iterable[Path]) -> tuple[Keyring, int]:
    """``--new-spool-key``: the first key, or a rotation that re-seals every file in ``spools`` under a new key;
    returns the new keyring and how many files were re-sealed. Run it while no agent uses the spools. The new key
    is written in front of the old ones first, so a rotation stopped half-way leaves every file readable (run it
    again to finish); the old keys are dropped once every file is under the new one."""
    try:
        old: tuple[SpoolKey, ...] = load(path).keys
    except SealError as exc:
        if exc.code != "spool_key_missing":
            raise
        old = ()
    keyring = Keyring((SpoolKey.generate(), *old))
    save(path, keyring)
    resealed = reseal_all(list(spools), keyring) if old else 0
    final = Keyring((keyring.current,))
    save(path, final)
    logger.info("spool key: a new key at %s; %s files re-sealed under it", path, resealed)
    return final, resealed
