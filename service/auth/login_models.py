"""Tables of the staff web login: credentials, sessions and the per-name failure throttle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime, new_id


class StaffCredential(Base):
    """A staff member's password (Argon2id PHC string) and TOTP secret (AES-GCM under a server key)."""

    __tablename__ = "staff_credentials"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # a code is accepted at most once


class StaffSession(Base):
    """A web login. The cookie holds 256 random bits; only their SHA-256 is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the absolute limit
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The personal private key, unlocked by the password at login and sealed under a key derived from the
    # cookie's secret (compartments): usable only while the browser presents the cookie.
    key_wrap: Mapped[bytes | None] = mapped_column(LargeBinary)


class LoginThrottle(Base):
    """Failed logins per typed name, keyed by HMAC of the normalised name — kept for names that exist and
    names that do not alike, so lockout behaviour does not reveal which names are accounts."""

    __tablename__ = "login_throttle"

    name_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
