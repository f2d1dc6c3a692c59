"""Server settings: embedded defaults, overridden by TELEUS_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: a SQLite file in data_dir
    host: str = "127.0.0.1"
    port: int = 8600
    cookie_secure: bool = False  # True behind HTTPS
    session_hours: float = 12.0
    max_body_bytes: int = 1 << 20
    ice_servers: tuple[str, ...] = field(default_factory=tuple)
    turnaround_json: str = ""  # per-modality/priority targets in minutes, see reading/targets.py
    lock_minutes: float = 10.0  # a reader's claim on a study expires unless renewed
    finding_escalation_minutes: float = 15.0  # an unacknowledged critical finding escalates after this

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
            cookie_secure=env.get("TELEUS_COOKIE_SECURE", "") in {"1", "true", "yes"},
            session_hours=float(env.get("TELEUS_SESSION_HOURS", base.session_hours)),
            ice_servers=tuple(s for s in env.get("TELEUS_ICE_SERVERS", "").split(",") if s),
            turnaround_json=env.get("TELEUS_TURNAROUND", ""),
            lock_minutes=float(env.get("TELEUS_LOCK_MINUTES", base.lock_minutes)),
            finding_escalation_minutes=float(
                env.get("TELEUS_FINDING_ESCALATION_MINUTES", base.finding_escalation_minutes)
            ),
        )
