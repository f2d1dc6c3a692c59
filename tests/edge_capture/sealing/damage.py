"""What a tamperer (or a failing disk) does to a sealed file, for the tests."""

from __future__ import annotations

from pathlib import Path


def flip_byte(path: Path, at: int) -> None:
    """One bit of the byte at ``at`` changed."""
    with open(path, "r+b") as out:
        out.seek(at)
        byte = out.read(1)
        out.seek(at)
        out.write(bytes([byte[0] ^ 0x01]))


def cut(path: Path, count: int) -> None:
    """The last ``count`` bytes gone."""
    with open(path, "r+b") as out:
        out.truncate(path.stat().st_size - count)
