"""Settings of the public web channel, read from ``TIPLINE_WEB_*`` environment variables.

Kept apart from ``service.platform.settings`` so the channel's knobs live with the channel; validated at start.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIPLINE_WEB_", extra="ignore")

    hotline_number: str = "12337"
    mailbox_address: str = "jubao@example.gov.cn"
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

    def field_bytes_limit(self) -> int:
        return 256 * 1024

    def body_limit(self) -> int:
        """The largest multipart body accepted: every file at its limit plus room for the fields."""
        return self.attachment_max_count * (self.attachment_max_bytes + 4096) + 1024 * 1024
