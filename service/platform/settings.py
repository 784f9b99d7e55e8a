"""One typed settings object, read from ``TIPLINE_*`` environment variables and validated at start."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import (
    Field,
    FilePath,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ZONE = "Asia/Shanghai"  # registry-number years and every deadline are counted in this zone


class SettingsError(RuntimeError):
    """A setting is invalid; the message names the environment variable."""


# What marks a value as not yet the deployment's own: a word of the kind, or a domain reserved for examples
# and tests (RFC 2606/6761) or used in this project's examples.
_PLACEHOLDER_WORDS = re.compile(
    r"示例|例如|样例|占位|待替换|请替换|example|placeholder|sample|changeme|todo|xxx", re.I
)
_PLACEHOLDER_HOSTS = re.compile(
    r"(^|[.@/])(example(\.[a-z.]+)?|[^/@]*\.(example|invalid|test|localhost|local))(:\d+)?($|/)", re.I
)


def is_placeholder(value: str, *, url: bool = False) -> bool:
    text = value.strip()
    if not text or _PLACEHOLDER_WORDS.search(text) or _PLACEHOLDER_HOSTS.search(text):
        return True
    if "@" in text:
        return text.rsplit("@", 1)[1].lower() in ("localhost", "tipline.local")
    if url:
        return not re.fullmatch(r"https://[^\s/]+(/\S*)?", text)
    return False


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIPLINE_WEB_", extra="ignore")

    # Who the public pages speak for (and the poster prints). Empty or placeholder values (see
    # ``placeholders``) are never shown; the public pages refuse to start with them in production.
    committee_name: str = ""  # e.g. 某某区委政法委员会
    hotline_number: str = ""  # the committee's own reporting line, e.g. 0000-12345678
    mailbox_address: str = ""  # the reporting mailbox, e.g. jubao@<the committee's domain>
    # The address citizens reach the form at (the poster's QR code), e.g. https://jubao.<domain>; empty: the
    # address the request came to (development only: behind a proxy that is the internal one).
    public_url: str = ""
    # Attachments: shown on the form before upload, enforced while the bytes stream in.
    attachment_max_count: int = Field(default=5, ge=0, le=20)
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    blob_dir: Path | None = None  # default: <data_dir>/blobs
    # Keep the unsanitised original beside the cleaned copy, its key wrapped to the identity key (its
    # metadata identifies: GPS, device, author). Off by default.
    keep_originals: bool = False
    # Abuse resistance, all in memory.
    pow_bits: int = Field(default=16, ge=0, le=28)  # leading zero bits of SHA-256; 0 turns it off
    pow_max_age_seconds: int = Field(default=4 * 3600, ge=60)
    queue_concurrency: int = Field(default=2, ge=1, le=64)  # no-JS submissions processed at once
    queue_waiting: int = Field(default=32, ge=0, le=10_000)  # no-JS submissions allowed to wait
    queue_wait_seconds: float = Field(default=20.0, gt=0)
    lookup_floor_seconds: float = Field(default=0.25, ge=0)  # every receipt lookup takes at least this
    lookup_free_failures: int = Field(default=5, ge=1)
    lookup_window_seconds: float = Field(default=600.0, gt=0)
    # Reverse proxies in front of the app that append to X-Forwarded-For. 0: the peer address is the
    # client. N: the client is the Nth X-Forwarded-For entry from the right. Used only as HMAC input for
    # the in-memory throttle and queue; never stored or logged.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10)
    # Address ranges (CIDR) of the organisations under supervision (police, court, procuratorate
    # intranets): a report arriving from one gets a warning before it is sent. Checked in memory only.
    supervised_networks: list[IPvAnyNetwork] = Field(default_factory=list)

    # A report form's idempotency key is honoured this long (a double tap or resend within it files nothing
    # new); kept only as a keyed hash, in memory, until it expires.
    submission_key_max_age_seconds: int = Field(default=24 * 3600, ge=600, le=7 * 24 * 3600)

    IDENTITY_FIELDS: ClassVar[tuple[str, ...]] = (
        "committee_name",
        "hotline_number",
        "mailbox_address",
        "public_url",
    )

    def placeholders(self) -> list[str]:
        """The deployment-identity variables that are empty or still a placeholder or an example."""
        return [
            f"TIPLINE_WEB_{name.upper()}"
            for name in self.IDENTITY_FIELDS
            if is_placeholder(getattr(self, name), url=name == "public_url")
        ]

    def public(self, name: str) -> str:
        """A deployment-identity value as the public may see it: empty while it is a placeholder."""
        value: str = getattr(self, name)
        return "" if is_placeholder(value, url=name == "public_url") else value.strip()

    def field_bytes_limit(self) -> int:
        return 256 * 1024

    def body_limit(self) -> int:
        """The largest multipart body accepted: every file at its limit plus room for the fields."""
        return self.attachment_max_count * (self.attachment_max_bytes + 4096) + 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIPLINE_", extra="ignore", validate_default=True)

    environment: Literal["development", "production"] = "development"
    # The public web channel's own knobs (``TIPLINE_WEB_*``, docs/web.md), read with the rest.
    web: WebSettings = Field(default_factory=WebSettings)
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
    # National suite: how long one SM2-wrapped data key seals records (service/platform/crypto/national.py).
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
    # Signed audit checkpoints, taken automatically this often and written as files to a directory the
    # database role cannot touch (docs/security.md); `tipline audit verify` compares with the newest.
    audit_checkpoint_minutes: int = Field(default=10, ge=1, le=24 * 60)
    audit_checkpoint_dir: Path | None = None  # default: <data_dir>/audit-checkpoints
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
    # Where an attachment waits, in the clear, for the seconds mat2 or ffmpeg clean it: a tmpfs (memory,
    # never a disk), in a fresh 0700 directory per upload that is removed afterwards (docs/security.md).
    attachment_scratch_dir: Path = Path("/dev/shm")  # noqa: S108 - a private 0700 directory per upload inside
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
    def blob_dir(self) -> Path:
        """The one file store every channel writes to: ``TIPLINE_WEB_BLOB_DIR``, else ``<data_dir>/blobs``."""
        return self.web.blob_dir or self.data_dir / "blobs"

    @property
    def effective_audit_checkpoint_dir(self) -> Path:
        return self.audit_checkpoint_dir or self.data_dir / "audit-checkpoints"

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
            parts = [str(p) for p in error["loc"] if not isinstance(p, int)]  # a list item's index: no
            if parts and parts[0] in WebSettings.model_fields and parts[0] not in Settings.model_fields:
                parts.insert(0, "web")  # the web channel's settings are built inside Settings
            name = "TIPLINE_" + "_".join(parts).upper() if parts else "settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid setting(s): " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()


def settings_markdown() -> str:
    """Every ``TIPLINE_*`` variable with its type and default: docs/settings.md is this text (a test keeps
    them equal), so the list cannot drift from the one ``Settings``."""
    lines = [
        "# Settings",
        "",
        "Generated from `service/platform/settings.py` by `settings_markdown()`; a test keeps this file",
        "equal to it. What each one means: the README's table and the docs of each area (web, mail, staff",
        "login, operations, security).",
        "",
        "| variable | type | default |",
        "|---|---|---|",
    ]

    def rows(model: type[BaseSettings], prefix: str) -> None:
        for name, field in model.model_fields.items():
            if name == "web":
                continue
            default = field.get_default(call_default_factory=True)
            shown = "—" if default in (None, "") else str(default).replace("\n", " ").replace("|", "\\|")
            if len(shown) > 60:
                shown = shown[:57] + "…"
            kind = re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", str(field.annotation))
            kind = re.sub(r"(?:typing|pathlib|pydantic\.types)\.", "", kind).replace("|", "\\|")
            lines.append(f"| `{prefix}{name.upper()}` | {kind} | {shown} |")

    rows(Settings, "TIPLINE_")
    rows(WebSettings, "TIPLINE_WEB_")
    return "\n".join(lines) + "\n"
