"""Server settings: embedded defaults, overridden by TELEUS_* environment variables."""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: a SQLite file in data_dir
    host: str = "127.0.0.1"
    port: int = 8600
    cookie_secure: bool = False  # True behind HTTPS (and whenever the server speaks TLS itself)
    tls_cert: str = ""  # PEM certificate chain: the server speaks HTTPS itself (else put a TLS proxy in front)
    tls_key: str = ""
    session_hours: float = 12.0
    max_body_bytes: int = 1 << 20
    ice_servers: tuple[str, ...] = field(default_factory=tuple)  # STUN (or static) URLs, handed out as they are
    # TURN with short-lived credentials (signaling_server/ice.py, docs/TURN.md)
    turn_urls: tuple[str, ...] = field(default_factory=tuple)  # e.g. turn:host:3478?transport=udp, turns:host:443?…
    turn_secret: str = field(default="", repr=False)  # coturn's static-auth-secret (from TELEUS_TURN_SECRET_FILE)
    turn_credential_seconds: int = 4 * 3600  # how long a minted credential can open relays (ice.py says why 4 h)
    ice_transport_policy: str = "all"  # "relay": every page and edge relays through TURN
    relay_sites: tuple[str, ...] = field(default_factory=tuple)  # codes of sites whose edges and sonographers relay
    turnaround_json: str = ""  # per-modality/priority targets in minutes, see reading/targets.py
    lock_minutes: float = 10.0  # a reader's claim on a study expires unless renewed
    finding_escalation_minutes: float = 15.0  # an unacknowledged critical finding escalates after this
    max_dicom_bytes: int = 1 << 30  # the largest STOW-RS body (all parts together), and the largest one object
    max_pixels_per_frame: int = 1 << 26  # Rows × Columns of an arriving image (64 Mpixel: 8192 × 8192)
    max_frames: int = 2000  # NumberOfFrames of an arriving image
    max_pixel_bytes: int = 1 << 30  # its decoded pixel data: Rows × Columns × frames × samples × bits / 8
    max_stow_parts: int = 1000  # parts of one STOW-RS body
    dicom_port: int | None = None  # the C-STORE SCP; None: off (from_env turns it on at 11112); 0: any free port
    dicom_host: str = "127.0.0.1"
    dicom_ae_title: str = "TELEUS"
    dicom_tls_port: int | None = None  # the C-STORE SCP over DICOM TLS (2762 is DICOM's); None: off; 0: any free port
    dicom_tls_cert: str = ""  # PEM certificate (chain) of the TLS listener
    dicom_tls_key: str = ""
    dicom_tls_client_ca: str = ""  # PEM CA bundle the peers' client certificates are checked against
    dicom_tls_client_cert_required: bool = True  # False: a peer without a pinned certificate may come without one
    regional_id_issuer: str = "CN-RESIDENT-ID"  # IssuerOfPatientID of the ID all sites share (dicomstore/identity.py)
    pacs: str = ""  # "AET@host:port" of the regional PACS to forward every stored instance to; empty: no forwarding
    forward_backoff_seconds: float = 30.0  # the first retry of a failed forward; doubles per attempt (at most an hour)
    forward_max_attempts: int = 10  # then the job is `failed`
    pacs_tls: bool = False  # forward over DICOM TLS
    pacs_tls_ca: str = ""  # PEM CA bundle the PACS's certificate is checked against; "": the system's CAs
    pacs_tls_cert: str = ""  # PEM client certificate (chain) we present to the PACS; "": none
    pacs_tls_key: str = ""
    report_time_zone: str = "Asia/Shanghai"  # the dates and times on printed reports (docs/RESULTS.md)
    archive_backoff_seconds: float = 5.0  # the first retry of a report's SR archiving; doubles (at most 10 min)
    qc_weights: str = ""  # JSON: the session score's part weights (qc.score.parse_weights); "": the defaults
    qc_scoring: bool = False  # score every complete recording offline (quality/scorer.py); from_env: on
    # accounts and sign-in (docs/SECURITY.md §4)
    public_url: str = ""  # how people reach the server, e.g. https://teleus.example.cn; https:// means HTTPS
    admin_totp_required: bool = False  # an admin must enrol a TOTP second factor before doing anything else
    token_days: float = 90.0  # an API token's lifetime unless its creator asks for less
    hash_workers: int = 2  # password hashes (46 MiB each) computed at once; more wait in the queue
    hash_queue: int = 8  # attempts waiting for a hashing slot; past that: 503 server_busy
    credential_check_seconds: float = 30.0  # how often open sockets are checked against ended credentials
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)  # whose X-Forwarded-For names the client

    def __post_init__(self) -> None:
        if self.ice_transport_policy not in {"all", "relay"}:
            raise ValueError(f"TELEUS_ICE_TRANSPORT_POLICY must be all or relay, not {self.ice_transport_policy!r}")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("TELEUS_TURN_URLS needs the shared secret: TELEUS_TURN_SECRET_FILE")
        if (self.ice_transport_policy == "relay" or self.relay_sites) and not self.turn_urls:
            raise ValueError("a relay-only ICE policy needs a TURN server: TELEUS_TURN_URLS")
        if self.turn_credential_seconds <= 0:
            raise ValueError("TELEUS_TURN_CREDENTIAL_SECONDS must be positive")

    @property
    def https(self) -> bool:
        """People reach the server over HTTPS: its public URL says so, or it speaks TLS itself."""
        return self.public_url.lower().startswith("https://") or bool(self.tls_cert)

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure or self.https

    # Per-user limits of the signaling sockets (signaling/limits.py, PROTOCOL.md §2 "Limits").
    max_sockets_per_user: int = 8  # open at once, all consultations together
    max_sockets_per_device: int = 8
    signal_messages_per_second: float = 50.0  # every message of one socket (a token bucket)...
    signal_message_burst: int = 200  # ...holding this many
    chat_lines_per_second: float = 1.0  # chat lines of one user or device, all their sockets together
    chat_line_burst: int = 10
    # Several server processes (signaling_server/cluster.py, docs/SERVERS.md): "" runs alone, state in memory.
    redis_url: str = ""  # redis://host:6379/0: rooms, sign-in throttle and socket limits shared through Redis
    redis_prefix: str = "teleus:"  # every Redis key teleus writes starts with this
    # orders and the modality worklist (docs/ORDERS.md)
    worklist: bool = True  # the C-FIND MWL SCP on the DICOM listener's AE; TELEUS_WORKLIST=off leaves it out
    worklist_timezone: str = "Asia/Shanghai"  # the zone of the worklist's DICOM dates and times

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context when a certificate is configured (TLS 1.2 or newer)."""
        if not self.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key or None)
        return context

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'teleus.sqlite3').resolve()}"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        base = cls()
        return cls(
            data_dir=Path(env.get("TELEUS_DATA_DIR", str(base.data_dir))),
            database_url=env.get("TELEUS_DATABASE_URL", ""),
            host=env.get("TELEUS_HOST", base.host),
            port=int(env.get("TELEUS_PORT", base.port)),
            cookie_secure=env.get("TELEUS_COOKIE_SECURE", "") in {"1", "true", "yes"}
            or bool(env.get("TELEUS_TLS_CERT")),
            tls_cert=env.get("TELEUS_TLS_CERT", ""),
            tls_key=env.get("TELEUS_TLS_KEY", ""),
            session_hours=float(env.get("TELEUS_SESSION_HOURS", base.session_hours)),
            ice_servers=tuple(s for s in env.get("TELEUS_ICE_SERVERS", "").split(",") if s),
            turn_urls=tuple(s.strip() for s in env.get("TELEUS_TURN_URLS", "").split(",") if s.strip()),
            turn_secret=_secret_file(env.get("TELEUS_TURN_SECRET_FILE", ""), "TELEUS_TURN_SECRET_FILE"),
            turn_credential_seconds=int(env.get("TELEUS_TURN_CREDENTIAL_SECONDS", base.turn_credential_seconds)),
            ice_transport_policy=env.get("TELEUS_ICE_TRANSPORT_POLICY", base.ice_transport_policy).strip().lower(),
            relay_sites=tuple(s.strip() for s in env.get("TELEUS_ICE_RELAY_SITES", "").split(",") if s.strip()),
            turnaround_json=env.get("TELEUS_TURNAROUND", ""),
            lock_minutes=float(env.get("TELEUS_LOCK_MINUTES", base.lock_minutes)),
            finding_escalation_minutes=float(
                env.get("TELEUS_FINDING_ESCALATION_MINUTES", base.finding_escalation_minutes)
            ),
            max_dicom_bytes=int(env.get("TELEUS_MAX_DICOM_BYTES", base.max_dicom_bytes)),
            max_pixels_per_frame=int(env.get("TELEUS_MAX_PIXELS_PER_FRAME", base.max_pixels_per_frame)),
            max_frames=int(env.get("TELEUS_MAX_FRAMES", base.max_frames)),
            max_pixel_bytes=int(env.get("TELEUS_MAX_PIXEL_BYTES", base.max_pixel_bytes)),
            max_stow_parts=int(env.get("TELEUS_MAX_STOW_PARTS", base.max_stow_parts)),
            dicom_port=_optional_port(env.get("TELEUS_DICOM_PORT", "11112")),
            dicom_host=env.get("TELEUS_DICOM_HOST", base.dicom_host),
            dicom_ae_title=env.get("TELEUS_DICOM_AE_TITLE", base.dicom_ae_title),
            dicom_tls_port=_optional_port(env.get("TELEUS_DICOM_TLS_PORT", "")),
            dicom_tls_cert=env.get("TELEUS_DICOM_TLS_CERT", ""),
            dicom_tls_key=env.get("TELEUS_DICOM_TLS_KEY", ""),
            dicom_tls_client_ca=env.get("TELEUS_DICOM_TLS_CLIENT_CA", ""),
            dicom_tls_client_cert_required=env.get("TELEUS_DICOM_TLS_CLIENT_CERT", "required").lower() != "optional",
            regional_id_issuer=env.get("TELEUS_REGIONAL_ID_ISSUER", base.regional_id_issuer),
            pacs=env.get("TELEUS_PACS", base.pacs),
            forward_backoff_seconds=float(env.get("TELEUS_FORWARD_BACKOFF_SECONDS", base.forward_backoff_seconds)),
            forward_max_attempts=int(env.get("TELEUS_FORWARD_MAX_ATTEMPTS", base.forward_max_attempts)),
            pacs_tls=env.get("TELEUS_PACS_TLS", "").lower() in {"1", "true", "yes", "on"},
            pacs_tls_ca=env.get("TELEUS_PACS_TLS_CA", ""),
            pacs_tls_cert=env.get("TELEUS_PACS_TLS_CERT", ""),
            pacs_tls_key=env.get("TELEUS_PACS_TLS_KEY", ""),
            archive_backoff_seconds=float(env.get("TELEUS_ARCHIVE_BACKOFF_SECONDS", base.archive_backoff_seconds)),
            report_time_zone=env.get("TELEUS_REPORT_TIME_ZONE", base.report_time_zone),
            qc_weights=env.get("TELEUS_QC_WEIGHTS", ""),
            qc_scoring=env.get("TELEUS_QC_SCORING", "1").lower() not in {"0", "false", "no", "off"},
            public_url=_public_url(env.get("TELEUS_PUBLIC_URL", "")),
            admin_totp_required=env.get("TELEUS_ADMIN_TOTP", "").lower() in {"1", "true", "yes", "on"},
            token_days=float(env.get("TELEUS_TOKEN_DAYS", base.token_days)),
            hash_workers=int(env.get("TELEUS_HASH_WORKERS", base.hash_workers)),
            hash_queue=int(env.get("TELEUS_HASH_QUEUE", base.hash_queue)),
            trusted_proxies=tuple(s.strip() for s in env.get("TELEUS_TRUSTED_PROXIES", "").split(",") if s.strip()),
            max_sockets_per_user=int(env.get("TELEUS_MAX_SOCKETS_PER_USER", base.max_sockets_per_user)),
            max_sockets_per_device=int(env.get("TELEUS_MAX_SOCKETS_PER_DEVICE", base.max_sockets_per_device)),
            signal_messages_per_second=float(env.get("TELEUS_SIGNAL_RATE", base.signal_messages_per_second)),
            signal_message_burst=int(env.get("TELEUS_SIGNAL_BURST", base.signal_message_burst)),
            chat_lines_per_second=float(env.get("TELEUS_CHAT_RATE", base.chat_lines_per_second)),
            chat_line_burst=int(env.get("TELEUS_CHAT_BURST", base.chat_line_burst)),
            redis_url=env.get("TELEUS_REDIS_URL", "").strip(),
            redis_prefix=env.get("TELEUS_REDIS_PREFIX", base.redis_prefix),
            worklist=env.get("TELEUS_WORKLIST", "on").strip().lower() not in {"off", "0", "false", "no"},
            worklist_timezone=env.get("TELEUS_WORKLIST_TZ", base.worklist_timezone).strip(),
        )


def _public_url(value: str) -> str:
    """TELEUS_PUBLIC_URL: empty, or an http:// or https:// URL (a typo must not silently turn HTTPS defaults off)."""
    value = value.strip().rstrip("/")
    if value and not value.lower().startswith(("http://", "https://")):
        raise ValueError(f"TELEUS_PUBLIC_URL must start with http:// or https://, not {value!r}")
    return value


def _secret_file(path: str, name: str) -> str:
    """A secret read from a file (never from the command line or the environment itself); "" without a path."""
    if not path:
        return ""
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: cannot read {path}: {exc}") from None
    if not secret:
        raise ValueError(f"{name}: {path} is empty")
    if Path(path).stat().st_mode & 0o077:
        log.warning("%s: %s can be read by other accounts: chmod 600 it", name, path)
    return secret


def _optional_port(value: str) -> int | None:
    """TELEUS_DICOM_PORT, TELEUS_DICOM_TLS_PORT: a port number, or "" / "off" for no such listener."""
    value = value.strip().lower()
    return None if value in {"", "off", "none"} else int(value)
