"""Staff web sessions: password + TOTP login, lockout with backoff, idle and absolute timeouts, logout.

Invariants:
- The session cookie carries 256 random bits and nothing else; only SHA-256 of it is stored.
- Every login, failure and logout appends an audit entry. Audit details never hold the password, the
  TOTP code or the typed name; a failure for a name that is no account is recorded under a keyed hash of
  the name, and the caller sees exactly what a wrong password for a real account would show.
- Failed attempts are counted per typed name (existing or not), so lockout reveals nothing either.
- ``attempt_login`` returns its outcome instead of raising, so the edge commits the failure count and its
  audit entry (an exception would roll them back and make lockout useless).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth import passwords
from service.auth.login_models import LoginThrottle, StaffCredential, StaffSession
from service.auth.models import Staff
from service.auth.service import Principal, advance_rotations, unlock
from service.compartments import keys as compartment_keys
from service.compartments import rotation
from service.compartments import service as compartments
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import AnyKeyPair
from service.platform.db import new_id
from service.platform.errors import Conflict, Invalid, Unauthenticated
from service.platform.runtime import Configured
from service.platform.settings import Settings
from service.platform.timeutil import as_utc, utcnow

LOGIN_ACTOR = "unauthenticated"  # who a login attempt is, until it succeeds
# Last-seen is written at most this often, so reading pages does not turn every request into a write.
_TOUCH_EVERY = timedelta(seconds=30)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def session_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def name_key(runtime: Configured, name: str) -> str:
    normalised = unicodedata.normalize("NFKC", name).strip().casefold()
    return hmac.new(runtime.lookup_key("login-name"), normalised.encode(), hashlib.sha256).hexdigest()


def csrf_token_for(runtime: Configured, session_token: str) -> str:
    """The synchronizer token of one session: derived from the session's own secret, so it needs no
    storage and dies with the session."""
    return hmac.new(runtime.lookup_key("staff-csrf"), session_token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(runtime: Configured, session_token: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token_for(runtime, session_token), presented or "")


# --- Credentials ------------------------------------------------------------------------------------


async def _credential(session: AsyncSession, staff_id: str) -> StaffCredential:
    row = await session.get(StaffCredential, staff_id)
    if row is None:
        row = StaffCredential(staff_id=staff_id)
        session.add(row)
    return row


async def set_password(
    session: AsyncSession,
    *,
    staff: Staff,
    password: str,
    actor: str,
    keys: compartment_keys.KeySource,
    personal: AnyKeyPair | None = None,
) -> None:
    """Set (or replace) a password and seal the personal key under it (``personal``: the key, when the
    caller holds it; otherwise the account gets a new one, see ``compartments.service.set_password``).
    Ends the account's web sessions."""
    hashed = passwords.hash_password(password)
    row = await _credential(session, staff.id)
    row.password_hash = hashed
    row.password_set_at = utcnow()
    await session.flush()
    sealed = await session.run_sync(
        lambda s: compartments.set_password(
            s, staff_id=staff.id, unit_id=staff.unit_id, password=password, personal=personal, keys=keys
        )
    )
    ended = await revoke_sessions(session, staff_id=staff.id)
    await audit_service.record(
        session,
        actor=actor,
        action="staff.password_set",
        object_type="staff",
        object_id=staff.id,
        details={"sessions_ended": ended, "key_id": sealed.public.key_id},
    )


TOTP_KEY_LABEL = "totp-secret"


def totp_key(lookup_secret: bytes) -> bytes:
    """The key sealing TOTP secrets: the same derivation as ``Runtime.lookup_key(TOTP_KEY_LABEL)``, so the
    command line (which builds no Runtime) seals what the server opens."""
    return hmac.new(lookup_secret, TOTP_KEY_LABEL.encode(), hashlib.sha256).digest()


async def enrol_totp(session: AsyncSession, *, totp_key: bytes, staff: Staff, actor: str) -> str:
    """A new TOTP secret for the account (replacing any old one); returns the otpauth:// URI, once."""
    if staff.disabled:
        raise Conflict("账号已停用", message_en="account is disabled")
    secret = passwords.new_totp_secret()
    row = await _credential(session, staff.id)
    row.totp_secret = passwords.seal_totp_secret(totp_key, staff.id, secret)
    row.totp_enrolled_at = utcnow()
    row.totp_last_step = None
    await session.flush()
    ended = await revoke_sessions(session, staff_id=staff.id)
    await audit_service.record(
        session,
        actor=actor,
        action="staff.totp_enrolled",
        object_type="staff",
        object_id=staff.id,
        details={"sessions_ended": ended},
    )
    return passwords.provisioning_uri(secret, staff.name)


async def reset_totp(session: AsyncSession, *, staff: Staff, actor: str) -> None:
    """Remove the TOTP secret: the account cannot log in on the web until it enrols again."""
    row = await _credential(session, staff.id)
    row.totp_secret = None
    row.totp_enrolled_at = None
    row.totp_last_step = None
    await session.flush()
    ended = await revoke_sessions(session, staff_id=staff.id)
    await audit_service.record(
        session,
        actor=actor,
        action="staff.totp_reset",
        object_type="staff",
        object_id=staff.id,
        details={"sessions_ended": ended},
    )


async def revoke_sessions(session: AsyncSession, *, staff_id: str) -> int:
    result = await session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), key_wrap=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- Login ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    token: str | None = None  # the cookie value, on success only
    principal: Principal | None = None
    locked: bool = False
    retry_after: int = 0  # seconds, when locked


FAILED = LoginResult(ok=False)


async def _throttle(session: AsyncSession, key: str) -> LoginThrottle:
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    for _ in range(3):  # the pruning job may delete an idle row between our insert and our select
        await session.execute(insert(LoginThrottle).values(name_key=key, failures=0).on_conflict_do_nothing())
        row = (
            await session.execute(
                select(LoginThrottle).where(LoginThrottle.name_key == key).with_for_update()
            )
        ).scalar_one_or_none()
        if row is not None:
            return row
    raise RuntimeError("login throttle row vanished three times")


async def prune_login_throttle(session: AsyncSession, *, settings: Settings, now: datetime) -> int:
    """Delete the throttle rows that no longer change any answer, so the table does not grow with every
    name ever typed: not locked at ``now``, and either no failures left (a success reset them) or the last
    failure older than ``staff_lockout_max_seconds`` (``attempt_login`` forgives such a streak anyway).
    Returns how many rows went. The row of a name being locked or counted is never touched."""
    forgiven_before = now - timedelta(seconds=settings.staff_lockout_max_seconds)
    result = await session.execute(
        delete(LoginThrottle)
        .where(
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
            or_(
                LoginThrottle.failures == 0,
                LoginThrottle.last_failure_at.is_(None),
                LoginThrottle.last_failure_at < forgiven_before,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _lockout_seconds(settings: Settings, failures: int) -> int:
    over = failures - settings.staff_login_max_failures
    if over < 0:
        return 0
    return min(settings.staff_lockout_base_seconds * 2 ** min(over, 30), settings.staff_lockout_max_seconds)


async def attempt_login(
    session: AsyncSession, *, runtime: Configured, name: str, password: str, totp_code: str
) -> LoginResult:
    settings = runtime.settings
    now = utcnow()
    key = name_key(runtime, name)
    throttle = await _throttle(session, key)
    if throttle.locked_until is not None and as_utc(throttle.locked_until) > now:
        retry = int((as_utc(throttle.locked_until) - now).total_seconds()) + 1
        staff_id = await session.scalar(select(Staff.id).where(Staff.name == name.strip()))
        await _audit_failure(session, staff_id=staff_id, key=key, reason="locked", failures=throttle.failures)
        return LoginResult(ok=False, locked=True, retry_after=retry)
    if throttle.last_failure_at is not None and now - as_utc(throttle.last_failure_at) > timedelta(
        seconds=settings.staff_lockout_max_seconds
    ):
        throttle.failures = 0  # an old streak of failures is forgiven

    staff = await session.scalar(
        select(Staff).options(selectinload(Staff.roles)).where(Staff.name == name.strip()[:100])
    )
    credential = await session.get(StaffCredential, staff.id) if staff else None
    # Always one Argon2 verification, whether or not the account exists (timing says nothing).
    password_ok = passwords.verify_password(credential.password_hash if credential else None, password)
    reason: str | None = None
    step: int | None = None
    if staff is None:
        reason = "unknown_name"
    elif not password_ok:
        reason = "password"
    elif staff.disabled:
        reason = "disabled"
    elif credential is None or credential.totp_secret is None:
        reason = "totp_not_enrolled"
    else:
        key = runtime.lookup_key(TOTP_KEY_LABEL)
        secret = passwords.open_totp_secret(key, staff.id, credential.totp_secret)
        step = (
            passwords.verify_totp(secret, totp_code, last_step=credential.totp_last_step, at=time.time())
            if secret
            else None
        )
        if step is None:
            reason = "totp"

    if reason is not None or staff is None or credential is None:
        throttle.failures += 1
        throttle.last_failure_at = now
        lock = _lockout_seconds(settings, throttle.failures)
        throttle.locked_until = now + timedelta(seconds=lock) if lock else None
        await session.flush()
        await _audit_failure(
            session,
            staff_id=staff.id if staff else None,
            key=key,
            reason=reason or "",
            failures=throttle.failures,
        )
        return LoginResult(ok=False, locked=bool(lock), retry_after=lock)

    throttle.failures = 0
    throttle.locked_until = None
    credential.totp_last_step = step
    if credential.password_hash and passwords.needs_rehash(credential.password_hash):
        credential.password_hash = passwords.hash_password(password)
    token = new_session_token()
    # The password unlocks the personal key for this session only: sealed under the cookie's secret, which
    # the server does not keep (compartments).
    personal = await session.run_sync(
        lambda s: compartments.unlock_with_password(
            s, staff_id=staff.id, unit_id=staff.unit_id, password=password, keys=runtime.keys
        )
    )
    row = StaffSession(
        id=new_id(),
        staff_id=staff.id,
        session_hash=session_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.staff_session_absolute_hours),
    )
    row.key_wrap = compartment_keys.seal_under_secret(personal, token, session_label(row.id))
    session.add(row)
    await session.flush()
    await audit_service.record(
        session,
        actor=audit_service.staff_actor(staff.id),
        action="login.succeeded",
        object_type="staff",
        object_id=staff.id,
        details={"session_id": row.id},
    )
    unlocked = await session.run_sync(lambda s: compartments.unlocked(s, personal))
    unlocked = await advance_rotations(session, unlocked, staff_id=staff.id)
    return LoginResult(ok=True, token=token, principal=_principal(staff, row, unlocked))


async def _audit_failure(
    session: AsyncSession, *, staff_id: str | None, key: str, reason: str, failures: int
) -> None:
    # Unknown names are filed under the keyed hash of the name: the typed text may be a mistyped password.
    await audit_service.record(
        session,
        actor=LOGIN_ACTOR,
        action="login.failed",
        object_type="staff" if staff_id else "login_name",
        object_id=staff_id or key[:32],
        details={"reason": reason, "failures": failures},
    )


def session_label(session_id: str) -> str:
    return f"staff_sessions/{session_id}"


def _principal(staff: Staff, row: StaffSession, unlocked: compartment_keys.Unlocked | None) -> Principal:
    return Principal(
        staff_id=staff.id,
        name=staff.name,
        unit_id=staff.unit_id,
        roles=frozenset(r.role for r in staff.roles),
        token_id=f"session:{row.id}",
        unlocked=unlocked,
    )


async def authenticate_session(
    session: AsyncSession, *, token: str, settings: Settings
) -> tuple[Principal, StaffSession]:
    """The principal behind a session cookie. One answer for every failure (unknown, revoked, idle,
    expired, disabled account)."""
    found = (
        await session.execute(
            select(StaffSession, Staff)
            .join(Staff, Staff.id == StaffSession.staff_id)
            .options(selectinload(Staff.roles))
            .where(StaffSession.session_hash == session_hash(token))
        )
    ).first()
    refused = Unauthenticated("请先登录", message_en="please log in")
    if found is None:
        raise refused
    row, staff = found
    now = utcnow()
    idle_limit = as_utc(row.last_seen_at) + timedelta(minutes=settings.staff_session_idle_minutes)
    if row.revoked_at is not None or staff.disabled or as_utc(row.expires_at) <= now or idle_limit <= now:
        raise refused
    if now - as_utc(row.last_seen_at) >= _TOUCH_EVERY:
        row.last_seen_at = now
        await session.flush()
    unlocked = await unlock(session, row.key_wrap, token, session_label(row.id), staff_id=staff.id)
    return _principal(staff, row, unlocked), row


async def logout(session: AsyncSession, *, row: StaffSession, reason: str = "logout") -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.key_wrap = None
        await session.flush()
    await audit_service.record(
        session,
        actor=audit_service.staff_actor(row.staff_id),
        action="logout",
        object_type="staff",
        object_id=row.staff_id,
        details={"session_id": row.id, "reason": reason},
    )


async def end_all_sessions(session: AsyncSession, *, staff_id: str, actor: str) -> int:
    ended = await revoke_sessions(session, staff_id=staff_id)
    await audit_service.record(
        session,
        actor=actor,
        action="staff.sessions_ended",
        object_type="staff",
        object_id=staff_id,
        details={"sessions_ended": ended},
    )
    return ended


async def rotate_unit_keys(
    session: AsyncSession, *, staff: Staff, password: str, commit: Callable[[], Awaitable[None]]
) -> list[rotation.Step]:
    """A member replaces their unit's keys due for rotation (someone who held them left), with their own
    unlock: the password opens their personal key (a wrong one opens nothing), which opens the unit key.
    Chunk by chunk, ``commit`` between chunks (an interruption resumes); audited by the rotation."""
    if staff.disabled or staff.unit_id is None:
        raise Invalid("须为某单位在岗人员", message_en="must be an active member of a unit")
    unit_id = staff.unit_id
    personal = None
    for row in await session.run_sync(lambda s: compartments.staff_keys(s, [staff.id]).get(staff.id, [])):
        if row.password_wrap is not None and row.password_salt is not None:
            try:
                public = compartment_keys.public_from_json(row.public)
                personal = compartment_keys.open_under_password(
                    public, row.password_salt, row.password_wrap, password
                )
            except (EnvelopeError, ValueError):
                personal = None
    unlocked = await session.run_sync(lambda s: compartments.unlocked(s, personal)) if personal else None
    if unlocked is None:
        raise Invalid("密码无法解锁个人密钥", message_en="the password does not unlock a personal key")
    return await rotation.rotate_unit(
        session,
        unit_id=unit_id,
        pairs=unlocked.pairs,
        escrow=None,
        actor=audit_service.staff_actor(staff.id),
        via="cli",
        commit=commit,
    )
