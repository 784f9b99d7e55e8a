from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.platform.db import Base, IdColumn, UTCDateTime, new_id


class Unit(Base):
    """An organisation unit (公安分局, 派出所, 法院, 区纪委监委…), in a tree through ``parent_id``."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="other")
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    aliases: Mapped[str | None] = mapped_column(Text)  # JSON list: other names reporters use (recusal)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    roles: Mapped[list[StaffRole]] = relationship(lazy="raise", cascade="all, delete-orphan")


class StaffRole(Base):
    __tablename__ = "staff_roles"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256 (the token itself carries 256 random bits)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The holder's personal private key sealed under a key derived from the token itself (compartments):
    # the server, keeping only the hash, cannot open it without the token. None: a token that reads no
    # compartmented content (issued by someone who did not hold the key).
    key_wrap: Mapped[bytes | None] = mapped_column(LargeBinary)
