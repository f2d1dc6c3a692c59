"""Server settings: embedded defaults, overridden by TELEUS_* environment variables."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path


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
    ice_servers: tuple[str, ...] = field(default_factory=tuple)
    turnaround_json: str = ""  # per-modality/priority targets in minutes, see reading/targets.py
    lock_minutes: float = 10.0  # a reader's claim on a study expires unless renewed
    finding_escalation_minutes: float = 15.0  # an unacknowledged critical finding escalates after this
    max_dicom_bytes: int = 1 << 30  # the largest STOW-RS body (all parts together)
    dicom_port: int | None = None  # the C-STORE SCP; None: off (from_env turns it on at 11112); 0: any free port
    dicom_host: str = "127.0.0.1"
    dicom_ae_title: str = "TELEUS"
    regional_id_issuer: str = "CN-RESIDENT-ID"  # IssuerOfPatientID of the ID all sites share (dicomstore/identity.py)
    pacs: str = ""  # "AET@host:port" of the regional PACS to forward every stored instance to; empty: no forwarding
    forward_backoff_seconds: float = 30.0  # the first retry of a failed forward; doubles per attempt (at most an hour)
    forward_max_attempts: int = 10  # then the job is `failed`
    qc_weights: str = ""  # JSON: the session score's part weights (qc.score.parse_weights); "": the defaults
    qc_scoring: bool = False  # score every complete recording offline (quality/scorer.py); from_env: on
    # Per-user limits of the signaling sockets (signaling/limits.py, PROTOCOL.md §2 "Limits").
    max_sockets_per_user: int = 8  # open at once, all consultations together
    max_sockets_per_device: int = 8
    signal_messages_per_second: float = 50.0  # every message of one socket (a token bucket)...
    signal_message_burst: int = 200  # ...holding this many
    chat_lines_per_second: float = 1.0  # chat lines of one user or device, all their sockets together
    chat_line_burst: int = 10

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
            turnaround_json=env.get("TELEUS_TURNAROUND", ""),
            lock_minutes=float(env.get("TELEUS_LOCK_MINUTES", base.lock_minutes)),
            finding_escalation_minutes=float(
                env.get("TELEUS_FINDING_ESCALATION_MINUTES", base.finding_escalation_minutes)
            ),
            max_dicom_bytes=int(env.get("TELEUS_MAX_DICOM_BYTES", base.max_dicom_bytes)),
            dicom_port=_optional_port(env.get("TELEUS_DICOM_PORT", "11112")),
            dicom_host=env.get("TELEUS_DICOM_HOST", base.dicom_host),
            dicom_ae_title=env.get("TELEUS_DICOM_AE_TITLE", base.dicom_ae_title),
            regional_id_issuer=env.get("TELEUS_REGIONAL_ID_ISSUER", base.regional_id_issuer),
            pacs=env.get("TELEUS_PACS", base.pacs),
            forward_backoff_seconds=float(env.get("TELEUS_FORWARD_BACKOFF_SECONDS", base.forward_backoff_seconds)),
            forward_max_attempts=int(env.get("TELEUS_FORWARD_MAX_ATTEMPTS", base.forward_max_attempts)),
            qc_weights=env.get("TELEUS_QC_WEIGHTS", ""),
            qc_scoring=env.get("TELEUS_QC_SCORING", "1").lower() not in {"0", "false", "no", "off"},
            max_sockets_per_user=int(env.get("TELEUS_MAX_SOCKETS_PER_USER", base.max_sockets_per_user)),
            max_sockets_per_device=int(env.get("TELEUS_MAX_SOCKETS_PER_DEVICE", base.max_sockets_per_device)),
            signal_messages_per_second=float(env.get("TELEUS_SIGNAL_RATE", base.signal_messages_per_second)),
            signal_message_burst=int(env.get("TELEUS_SIGNAL_BURST", base.signal_message_burst)),
            chat_lines_per_second=float(env.get("TELEUS_CHAT_RATE", base.chat_lines_per_second)),
            chat_line_burst=int(env.get("TELEUS_CHAT_BURST", base.chat_line_burst)),
        )


def _optional_port(value: str) -> int | None:
    """TELEUS_DICOM_PORT: a port number, or "" / "off" for no DICOM listener."""
    value = value.strip().lower()
    return None if value in {"", "off", "none"} else int(value)
