"""One typed settings object, read from ``TIPLINE_*`` environment variables and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ZONE = "Asia/Shanghai"  # registry-number years and every deadline are counted in this zone


class SettingsError(RuntimeError):
    """A setting is invalid; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIPLINE_", extra="ignore", validate_default=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("./var")
    database_url: str = ""  # default: SQLite file under data_dir
    database_auto_upgrade: bool = False  # apply pending migrations at start instead of refusing
    # Optional read-only replica for ledger and statistics reads (``db.ReadSessionDep``); default: primary.
    database_read_url: str = ""
    metrics_token: SecretStr | None = None  # if set, /metrics wants "Authorization: Bearer <token>"
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=300)
    # ``tipline serve`` with the worker role runs the job loop in a process of its own (false: in the server's
    # event loop, where its transactions share the server's turns with HTTP).
    worker_process: bool = True

    # Keys. Intake needs only the two public keys; staff also the case private key(s).
    keys_dir: Path | None = None  # default: data_dir/keys
    # Which suite seals new envelopes and hashes new audit entries: "international" (HPKE ML-KEM-768+X25519,
    # AES-256-GCM, SHA-256) or "national" (SM2, SM4-GCM, SM3). Old envelopes of either suite still open.
    crypto_suite: Literal["international", "national"] = "international"
    # National suite: how long one SM2-wrapped data key seals records (service/crypto/national.py).
    crypto_data_key_seconds: float = Field(default=300.0, gt=0, le=24 * 3600)
    # Server secret for keyed lookups (receipt codes, the accused-person index); generated in development.
    lookup_secret: SecretStr | None = None

    registry_prefix: str = Field(default="LG", pattern=r"^[A-Z][A-Z0-9]{0,9}$")
    disposal_due_months: int = Field(default=1, ge=1, le=24)

    # Worker processes that classify and seal public reports beside the event loop (docs/performance.md);
    # unset: one per core but one, at most four, none on a single core; 0: in the server process.
    intake_workers: int | None = Field(default=None, ge=0, le=16)

    max_request_bytes: int = Field(default=256 * 1024, ge=1024)
    max_text_chars: int = Field(default=20_000, ge=100)

    token_ttl_days: int = Field(default=90, ge=1, le=3650)
    # Staff web login (docs/staff-login.md).
    staff_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    staff_session_absolute_hours: int = Field(default=12, ge=1, le=24 * 7)
    staff_login_max_failures: int = Field(default=5, ge=1, le=100)  # then locked, doubling each time
    staff_lockout_base_seconds: int = Field(default=60, ge=1, le=24 * 3600)
    staff_lockout_max_seconds: int = Field(default=24 * 3600, ge=1, le=30 * 24 * 3600)
    staff_cookie_secure: bool = True  # only for plain-http development may this be false
    # Files staff attach to clues they typed in (docs/staff-login.md), checked on the bytes as they stream.
    hotline_recording_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024, le=4 * 1024**3)
    letter_page_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=1024**3)
    audit_chains: int = Field(default=0, ge=0, le=64)  # 0: 1 on SQLite, 8 on PostgreSQL
    taxonomy_path: Path | None = None

    # Mailbox channel (docs/mail.md). The receiver accepts mail for these addresses only (never a relay).
    mail_accepted_addresses: list[str] = Field(default_factory=lambda: ["jubao@tipline.local"])
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_hostname: str = "tipline.local"  # the name the receiver greets with
    smtp_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    smtp_tls_cert: Path | None = None  # STARTTLS when both are set
    smtp_tls_key: Path | None = None
    mail_filtered_retention_hours: int = Field(default=72, ge=1, le=24 * 90)  # auto-replies, bounces, spam
    mail_attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # IMAP poller (alternative to the receiver): off unless a host is set.
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_tls: bool = True
    imap_tls_ca_file: FilePath | None = None  # PEM CA(s) to verify the server with; default: system store
    imap_username: str = ""
    imap_password: SecretStr | None = None
    imap_mailbox: str = "INBOX"
    imap_done_mailbox: str = ""  # move processed mail here; empty: flag it \Seen and \Deleted
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    # Outbound relay for acknowledgements and staff notifications: off unless a host is set.
    relay_host: str = ""
    relay_port: int = Field(default=587, ge=1, le=65535)
    relay_starttls: bool = True
    relay_tls_ca_file: FilePath | None = None  # PEM CA(s) to verify the relay with; default: system store
    relay_username: str = ""
    relay_password: SecretStr | None = None
    relay_from: str = "jubao@tipline.local"
    relay_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_acknowledge: bool = True  # send the receipt code back to the sender (when a relay is set)
    mail_ack_subject: str = "举报已收到 / Report received"
    mail_ack_body: str = (
        "您的举报已收到，查询码：{receipt}\n请妥善保存查询码，可在举报网站输入查询码查看办理进度、补充材料。"
        "\n本邮件由系统自动发送，请勿回复。\n\n"
        "Your report was received. Receipt code: {receipt}\nKeep it: enter it on the reporting website to "
        "follow up and add material. This message was sent automatically; please do not reply."
    )
    staff_link_base: str = "http://127.0.0.1:8000"  # where staff notifications point ("where", never "what")
    # Retention per status in days, e.g. {"concluded": 1825, "archived": 1825}; a status not named is kept.
    retention_days: dict[str, int] = Field(default_factory=dict)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("database_read_url")
    @classmethod
    def _known_read_driver(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production":
            if self.lookup_secret is None or len(self.lookup_secret.get_secret_value()) < 32:
                raise ValueError("TIPLINE_LOOKUP_SECRET must be set (at least 32 characters) in production")
            if not self.database_url:
                raise ValueError("TIPLINE_DATABASE_URL must be set in production")
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'tipline.db').resolve()}"

    @property
    def effective_keys_dir(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


def load_settings() -> Settings:
    """Read settings from the environment, turning validation errors into one readable message."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "TIPLINE_" + "_".join(str(p) for p in error["loc"]).upper() if error["loc"] else "settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid setting(s): " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
