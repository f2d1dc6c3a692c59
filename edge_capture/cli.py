"""`teleus edge` (that is, `python -m edge_capture`): run the edge capture agent.

`teleus edge ARGS` hands over to `python -m edge_capture ARGS` in place of itself (the server's command line
imports nothing of the edge); edge_capture/__main__.py parses, configures logging and calls :func:`run`.

Secure defaults (docs/SECURITY.md §9): the device credential never comes from the command line, which every
account on the PC can read in the process list: it comes from a file (``--credential-file``, ``-`` for stdin) or
from TELEUS_DEVICE_CREDENTIAL. A server on another machine must be ``https://`` unless ``--allow-insecure-http``.
The outbox and the recordings are sealed under the spool key (``--spool-key-file``; ``--new-spool-key`` makes or
rotates it and exits).

Exit status: 0 when stopped (SIGINT, SIGTERM) or after --new-spool-key; 1 when the options are unsafe or
incomplete; 2 when the video source fails; 3 when the server refuses the device; 4 when the spool key is missing
or unreadable.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import stat
import sys
from pathlib import Path

from edge_capture import eventloop
from edge_capture.agent import EdgeAgent, EdgeConfig
from edge_capture.encoding import VideoEncoding
from edge_capture.errors import ConfigError, SealError, ServerError, SourceError
from edge_capture.eventloop import EVENT_LOOPS
from edge_capture.sealing.keys import default_key_file
from edge_capture.sealing.repairs import new_key
from edge_capture.server_url import check_server_url

log = logging.getLogger(__name__)

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teleus edge", description="run the edge capture agent at a clinic")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_arguments(parser)
    return parser


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        default=os.environ.get("TELEUS_SERVER", "http://127.0.0.1:8600"),
        help="the server's URL (TELEUS_SERVER); https:// unless the server is on this machine",
    )
    p.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow plain http:// to a server on another machine: the credential, video and images then cross the "
        "network in clear (a lab network only)",
    )
    p.add_argument(
        "--credential-file",
        default=os.environ.get("TELEUS_DEVICE_CREDENTIAL_FILE"),
        help="file holding the device credential dev_<id>_<secret>, - for stdin (TELEUS_DEVICE_CREDENTIAL_FILE); "
        "or put the credential itself in TELEUS_DEVICE_CREDENTIAL. Never on the command line",
    )
    p.add_argument("--credential", help=argparse.SUPPRESS)  # refused with a reason (config_from)
    p.add_argument(
        "--spool-key-file",
        default=os.environ.get("TELEUS_EDGE_SPOOL_KEY_FILE"),
        help="the key that seals the outbox and the recordings (TELEUS_EDGE_SPOOL_KEY_FILE); default: "
        "teleus-edge-spool.key beside the --spool folder, made on the first run. Better on another medium",
    )
    p.add_argument(
        "--new-spool-key",
        action="store_true",
        help="make a new spool key (the first one, or a rotation that seals every spooled file again under it) "
        "and exit; run it while the agent is stopped",
    )
    p.add_argument(
        "--source",
        default="synthetic:thyroid",
        help="synthetic:thyroid | synthetic:carotid | file:PATH (video or DICOM cine) | device:/dev/videoN",
    )
    p.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="720p")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--codec", choices=["h264", "vp8"], default="h264")
    p.add_argument("--bitrate", type=float, default=6.0, help="video bitrate cap in Mb/s (default 6)")
    p.add_argument("--x264-preset", default="ultrafast")
    p.add_argument(
        "--degradation",
        choices=["resolution", "framerate"],
        default=os.environ.get("TELEUS_EDGE_DEGRADATION", "resolution"),
        help="on a slow link, give up resolution first (keep motion, for guidance; the default) or the frame rate "
        "first (keep detail); stills are always full quality (TELEUS_EDGE_DEGRADATION)",
    )
    p.add_argument(
        "--no-adaptive-rate",
        dest="adaptive_rate",
        action="store_false",
        help="follow the browser's REMB estimate alone, not the loss and round trip of its receiver reports",
    )
    p.add_argument(
        "--turn-transport",
        choices=["udp", "tcp", "tls"],
        default=os.environ.get("TELEUS_EDGE_TURN_TRANSPORT") or None,
        help="which of the server's TURN URLs to use (aiortc uses one): udp, tcp, or tls (turns:, e.g. port 443 "
        "through a firewall that blocks UDP); default the server's first (TELEUS_EDGE_TURN_TRANSPORT)",
    )
    p.add_argument("--ice-host", action="append", default=[], help="gather ICE candidates only on this address")
    p.add_argument(
        "--spool",
        default=os.environ.get("TELEUS_EDGE_SPOOL", "teleus-edge-outbox"),
        help="folder where captures wait until the server has them (TELEUS_EDGE_SPOOL)",
    )
    p.add_argument("--calibration", default="", help="JSON file of US region calibrations per scanner preset")
    p.add_argument("--preset", default="", help="the scanner preset in use (a key of --calibration)")
    p.add_argument("--source-lossy", default="", help="the lossy codec the source applied, e.g. ISO_10918_1")
    p.add_argument(
        "--history-seconds",
        type=float,
        default=4.0,
        help="seconds of source frames kept for clips (memory: about 2.8 MB per 720p frame)",
    )
    p.add_argument(
        "--recordings",
        default=os.environ.get("TELEUS_EDGE_RECORDINGS", "teleus-edge-recordings"),
        help="folder where consultation recordings wait until the server has them (TELEUS_EDGE_RECORDINGS)",
    )
    p.add_argument("--no-record", dest="record", action="store_false", help="never record on this edge")
    p.add_argument("--recording-preset", default="superfast", help="x264 preset of the recordings (default superfast)")
    p.add_argument("--recording-crf", type=int, default=22, help="x264 constant rate factor (default 22)")
    p.add_argument("--no-recording-voice", dest="recording_audio", action="store_false", help="record video only")
    p.add_argument(
        "--recording-nice",
        type=int,
        default=0,
        help="niceness of the recorder thread; > 0 lets the live video win on a machine short of CPU (default 0)",
    )
    p.add_argument(
        "--upload-chunk-kib", type=int, default=1024, help="recording upload chunk size in KiB (default 1024)"
    )
    p.add_argument(
        "--upload-mbps",
        type=float,
        default=0.0,
        help="cap on the recording upload in Mb/s, to spare the live video's uplink (default 0: no cap)",
    )
    p.add_argument(
        "--recording-copy-min-bpp",
        type=float,
        default=0.15,
        help="copy the live H.264 into the recording while its rate is at least this many bits per pixel per frame "
        "at 720p, scaled to other sizes for the same picture quality (default 0.15: 4.1 Mb/s at 720p30, 6.0 Mb/s at "
        "1080p30); below, the recording is encoded separately",
    )
    p.add_argument(
        "--no-recording-copy",
        dest="recording_copy",
        action="store_false",
        help="always encode the recording separately, never copy the live H.264",
    )
    p.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default="uvloop",
        help="the event loop: uvloop (default, asyncio's own if it is not installed) or asyncio",
    )
    p.add_argument(
        "--no-live-qc",
        dest="live_qc",
        action="store_false",
        help="no live image QC alerts (to measure what they cost)",
    )
    p.add_argument("--keep-recordings", action="store_true", help="keep local copies after the server has them whole")
    p.add_argument(
        "--no-shared-encoder",
        dest="shared_encoder",
        action="store_false",
        help="encode H.264 once per page instead of once for all pages of a consultation",
    )


def read_credential(args: argparse.Namespace, env: dict[str, str] | None = None) -> str:
    """The device credential from --credential-file (``-``: the first line of stdin) or TELEUS_DEVICE_CREDENTIAL;
    ConfigError ``no_credential`` when there is none, or when it was put on the command line."""
    env = dict(os.environ if env is None else env)
    if args.credential is not None:
        raise ConfigError(
            "no_credential",
            "--credential is refused: on the command line the credential shows in the process list to every "
            "account on this PC. Give --credential-file FILE (- for stdin) or TELEUS_DEVICE_CREDENTIAL",
        )
    if args.credential_file == "-":
        credential = sys.stdin.readline().strip()
    elif args.credential_file:
        path = Path(args.credential_file)
        try:
            credential = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("no_credential", f"cannot read the credential file {path}: {exc}") from None
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            log.warning("the credential file %s can be read by other accounts: chmod 600 it", path)
    else:
        credential = env.get("TELEUS_DEVICE_CREDENTIAL", "").strip()
    if not credential:
        raise ConfigError("no_credential", "give --credential-file FILE (- for stdin) or TELEUS_DEVICE_CREDENTIAL")
    return credential


def spool_key_file(args: argparse.Namespace) -> Path | None:
    return Path(args.spool_key_file) if args.spool_key_file else None


def config_from(args: argparse.Namespace) -> EdgeConfig:
    """The agent's configuration; SystemExit (status 1) with the reason when the options are unsafe or incomplete."""
    try:
        check_server_url(args.server, args.allow_insecure_http)
        credential = read_credential(args)
    except ConfigError as exc:
        raise SystemExit(f"teleus edge: {exc.message}") from None
    width, height = RESOLUTIONS[args.resolution]
    encoding = VideoEncoding(codec=args.codec, bitrate_bps=int(args.bitrate * 1e6), x264_preset=args.x264_preset,
                             degradation=args.degradation, adaptive_rate=args.adaptive_rate)  # fmt: skip
    return EdgeConfig(
        server_url=args.server,
        credential=credential,
        source=args.source,
        width=width,
        height=height,
        fps=args.fps,
        encoding=encoding,
        ice_hosts=tuple(args.ice_host),
        turn_transport=args.turn_transport,
        shared_encoder=args.shared_encoder,
        spool_dir=Path(args.spool),
        calibration_file=args.calibration,
        preset=args.preset,
        source_lossy=args.source_lossy,
        history_seconds=args.history_seconds,
        record=args.record,
        recordings_dir=Path(args.recordings),
        recording_preset=args.recording_preset,
        recording_crf=args.recording_crf,
        recording_audio=args.recording_audio,
        recording_nice=args.recording_nice,
        upload_chunk_bytes=max(1, args.upload_chunk_kib) * 1024,
        upload_max_bytes_per_second=args.upload_mbps * 1e6 / 8 if args.upload_mbps > 0 else None,
        keep_recordings=args.keep_recordings,
        live_qc=args.live_qc,
        recording_copy_min_bpp=args.recording_copy_min_bpp if args.recording_copy else None,
        spool_key_file=spool_key_file(args),
        allow_insecure_http=args.allow_insecure_http,
    )


async def _main(config: EdgeConfig) -> None:
    agent = EdgeAgent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.stop)
    await agent.run()


def _new_spool_key(args: argparse.Namespace) -> int:
    spool = Path(args.spool)
    path = spool_key_file(args) or default_key_file(spool)
    _, resealed = new_key(path, [spool, Path(args.recordings)])
    print(f"teleus edge: a new spool key in {path}; {resealed} spooled files sealed again under it")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        if args.new_spool_key:
            return _new_spool_key(args)
        config = config_from(args)
        eventloop.run(_main(config), args.event_loop)
    except SealError as exc:
        log.error("spool key: %s", exc)
        return 4
    except ConfigError as exc:
        log.error("%s", exc)
        return 1
    except SourceError as exc:
        log.error("video source: %s", exc)
        return 2
    except ServerError as exc:
        log.error("server: %s", exc)
        return 3
    return 0
