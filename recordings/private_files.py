"""Files that hold patient data are readable by their owner only: 0600 files in 0700 folders.

The server's data folder (database, DICOM blobs, recordings, teaching exports) and the edge's spools are made
through these helpers, so another account on the same machine reads none of it, whatever the process's umask
(docs/SECURITY.md §9). Modes are set when a file or folder is created; :func:`private_dir` also tightens the
folder it is given when an earlier version left it open to others. Everything here blocks on the disk.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open`: a file it creates is 0600 (an existing file keeps its mode)."""
    return os.open(path, flags, FILE_MODE)


def make_private_dirs(path: Path) -> Path:
    """``mkdir -p`` where every folder made is 0700 (folders that already exist are left as they are)."""
    missing = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:  # made meanwhile by another thread or process
            pass
    return path


def private_dir(path: Path) -> Path:
    """:func:`make_private_dirs`, and the folder itself tightened to 0700 if an earlier version left it open."""
    make_private_dirs(path)
    tighten(path, DIR_MODE)
    return path


def tighten(path: Path, mode: int) -> bool:
    """Take group and other permissions off ``path`` (to ``mode``) if it has any; True when it changed.
    A path owned by someone else is left alone (and logged): its owner decides."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    if not stat.S_IMODE(info.st_mode) & 0o077:
        return False
    if info.st_uid != os.geteuid():
        logger.warning("%s is open to other accounts (%o) and not ours to change", path, stat.S_IMODE(info.st_mode))
        return False
    os.chmod(path, mode)
    logger.info("%s was open to other accounts (%o): now %o", path, stat.S_IMODE(info.st_mode), mode)
    return True


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new or existing file, created 0600."""
    with open(path, "wb", opener=private_opener) as out:
        out.write(data)
