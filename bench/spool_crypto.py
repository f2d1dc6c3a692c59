"""What sealing the edge's spools costs: CPU per MiB of the sealed file format (edge_capture/sealing/sealed.py)
side by side with the bare AES-GCM it is built on and with the same I/O in clear.

    .venv/bin/python -m bench.spool_crypto               # 64 MiB per case, 5 rounds (≈ 30 s)
    .venv/bin/python -m bench.spool_crypto --mib 16 --rounds 3

Cases (CPU time of the measuring thread, so other load on the machine barely moves the figures; wall time too):

- ``aesgcm_seal`` / ``aesgcm_open``: ``AESGCM.encrypt`` / ``decrypt`` of 64 KiB records, fresh nonces: the floor.
- ``plain_write`` / ``sealed_write``: the recorder's writes (32 KiB pieces, PyAV's I/O buffer) to a file in clear
  and through ``SealedWriter`` (64 KiB records, one fsync at close for both).
- ``plain_read`` / ``sealed_read``: the uploader's reads (1 MiB chunks in order) from a file in clear and through
  ``SealedReader.read_at`` (every record authenticated).
- ``sha256``: what the uploader already spends on every chunk, for scale.
- ``still``: one 720p RGB still (2.76 MB) spooled (``write_sealed``) and opened for upload (``read_sealed``).

The report also puts the figures at the rate the recorder writes (2.5 Mb/s, 720p30 at CRF 22) as a share of one
core. JSON on stdout and in ``bench/out/spool-crypto-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from edge_capture.sealing.keys import Keyring, SpoolKey
from edge_capture.sealing.sealed import RECORD_BYTES, SealedReader, SealedWriter, read_sealed, write_sealed

OUT_DIR = Path(__file__).resolve().parent / "out"
MIB = 1 << 20
WRITE_PIECE = 32 * 1024
READ_CHUNK = 1 << 20
RECORDING_MBPS = 2.5
STILL_BYTES = 1280 * 720 * 3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measured(work: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this thread, wall seconds) of one call."""
    cpu, wall = time.thread_time(), time.perf_counter()
    work()
    return time.thread_time() - cpu, time.perf_counter() - wall


def cases(key: SpoolKey, data: bytes, folder: Path) -> dict[str, Callable[[], None]]:
    view = memoryview(data)  # slices without copies: the cases share one buffer
    records = [view[i : i + RECORD_BYTES] for i in range(0, len(data), RECORD_BYTES)]
    nonce = os.urandom(12)
    sealed_records = [key.aead.encrypt(nonce, record, b"ad") for record in records[:64]]  # 4 MiB, opened in turn
    plain_path, sealed_path = folder / "plain.bin", folder / "sealed.bin"
    pieces = [view[i : i + WRITE_PIECE] for i in range(0, len(data), WRITE_PIECE)]

    def aesgcm_seal() -> None:
        for record in records:
            key.aead.encrypt(os.urandom(12), record, b"ad")

    def aesgcm_open() -> None:
        for index in range(len(records)):
            key.aead.decrypt(nonce, sealed_records[index % len(sealed_records)], b"ad")

    def plain_write() -> None:
        with open(plain_path, "wb") as out:
            for piece in pieces:
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())

    def sealed_write() -> None:
        writer = SealedWriter(sealed_path, key)
        for piece in pieces:
            writer.write(piece)
        writer.close()

    def plain_read() -> None:
        with open(plain_path, "rb", buffering=0) as source:
            while source.read(READ_CHUNK):
                pass

    def sealed_read() -> None:
        with SealedReader(sealed_path, Keyring((key,))) as view:
            for offset in range(0, view.size, READ_CHUNK):
                view.read_at(offset, READ_CHUNK)

    def sha256() -> None:
        for offset in range(0, len(data), READ_CHUNK):
            hashlib.sha256(view[offset : offset + READ_CHUNK]).digest()

    return {
        "aesgcm_seal": aesgcm_seal,
        "aesgcm_open": aesgcm_open,
        "plain_write": plain_write,
        "sealed_write": sealed_write,
        "plain_read": plain_read,
        "sealed_read": sealed_read,
        "sha256": sha256,
    }


def still(key: SpoolKey, folder: Path, rounds: int) -> dict[str, Any]:
    data = os.urandom(STILL_BYTES)
    path = folder / "still.dcm"
    spooled, opened = [], []
    for _ in range(rounds):
        spooled.append(measured(lambda: write_sealed(path, data, key)))
        opened.append(measured(lambda: read_sealed(path, Keyring((key,)))))
    return {
        "bytes": STILL_BYTES,
        "spool_cpu_ms": round(1000 * statistics.median(c for c, _ in spooled), 2),
        "open_cpu_ms": round(1000 * statistics.median(c for c, _ in opened), 2),
        "spool_wall_ms": round(1000 * statistics.median(w for _, w in spooled), 2),
        "open_wall_ms": round(1000 * statistics.median(w for _, w in opened), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    key = SpoolKey.generate()
    data = os.urandom(args.mib * MIB)
    report: dict[str, Any] = {
        "bench": "spool_crypto",
        "host": {"cpus": len(os.sched_getaffinity(0)), "loadavg_start": procs.loadavg()},
        "mib_per_round": args.mib,
        "rounds": args.rounds,
        "record_bytes": RECORD_BYTES,
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="teleus-bench-spool-crypto-") as tmp:
        work = cases(key, data, Path(tmp))
        timings: dict[str, list[tuple[float, float]]] = {name: [] for name in work}
        for round_ in range(args.rounds):
            log(f"round {round_ + 1}/{args.rounds}")
            for name, case in work.items():  # interleaved: a burst of load hits every case alike
                timings[name].append(measured(case))
        for name, samples in timings.items():
            cpu = [c / args.mib * 1000 for c, _ in samples]
            wall = [w / args.mib * 1000 for _, w in samples]
            results[name] = {
                "cpu_ms_per_mib": round(statistics.median(cpu), 3),
                "cpu_ms_per_mib_min": round(min(cpu), 3),
                "wall_ms_per_mib": round(statistics.median(wall), 3),
                "mib_per_cpu_second": round(1000 / statistics.median(cpu), 1) if statistics.median(cpu) else None,
            }
        report["still_720p"] = still(key, Path(tmp), args.rounds)
    report["cases"] = results
    extra_write = results["sealed_write"]["cpu_ms_per_mib"] - results["plain_write"]["cpu_ms_per_mib"]
    extra_read = results["sealed_read"]["cpu_ms_per_mib"] - results["plain_read"]["cpu_ms_per_mib"]
    mib_per_second = RECORDING_MBPS * 1e6 / 8 / MIB
    per_mib = {name: result["cpu_ms_per_mib"] for name, result in results.items()}
    report["sealing_overhead"] = {
        "write_cpu_ms_per_mib": round(extra_write, 3),
        "read_cpu_ms_per_mib": round(extra_read, 3),
        "write_vs_bare_aesgcm": round(per_mib["sealed_write"] / per_mib["aesgcm_seal"], 2),
        "read_vs_bare_aesgcm": round(per_mib["sealed_read"] / per_mib["aesgcm_open"], 2),
        f"recording_at_{RECORDING_MBPS}_mbps_pct_of_a_core": round(
            (extra_write + extra_read) * mib_per_second / 1000 * 100, 3
        ),
    }
    report["host"]["loadavg_end"] = procs.loadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64, help="MiB per case and round (default 64)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"spool-crypto-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(text + "\n")
    print(text)
    log(f"written to {out}")


if __name__ == "__main__":
    main()
