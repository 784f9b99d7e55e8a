"""A report form is filed once, whichever server process each copy of it reaches.

Every report form carries a fresh signed key (``service.citizen.once.SubmissionKeys`` issues and checks it).
The database keeps only ``HMAC(server key, form key)`` — nothing that links it to the clue — in
``submitted_forms``, until the key would expire anyway:

- ``claim`` before filing: the first copy gets ``new`` and holds a claim; a copy arriving while it is being
  filed sees ``pending``, one arriving after sees ``filed``. The insert is the lock: two processes racing
  for the same key cannot both win (primary key), and a claim whose process died while filing is given up
  after ``hold`` and may be taken over (the report may then be filed twice — only after a crash).
- ``finish`` after filing: ``filed``, with the sealed receipt view kept for ``view_seconds`` so a double tap
  that reached another process still leads to the receipt (sealed with a key the database does not hold,
  and cleared by the next claim after that); or, if nothing was filed, the claim is dropped so the next
  copy files it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from service.intake.models import SubmittedForm

PENDING, FILED = "pending", "filed"


@dataclass(frozen=True)
class Claim:
    """``new``: this copy files the report; ``pending``: another copy is being filed; ``filed``: it was
    filed (``view``: its sealed receipt view, while it is kept)."""

    outcome: Literal["new", "pending", "filed"]
    view: str | None = None


def _forget_old(session: Session, now: datetime) -> None:
    session.execute(delete(SubmittedForm).where(SubmittedForm.expires_at <= now))
    session.execute(
        update(SubmittedForm)
        .where(SubmittedForm.state == FILED, SubmittedForm.hold_until <= now, SubmittedForm.view.is_not(None))
        .values(view=None)
    )


def claim(session: Session, digest: bytes, *, expires_at: datetime, now: datetime, hold: timedelta) -> Claim:
    """Claim the form for filing, or say who has it. Raises ``IntegrityError`` when another process
    inserted the same key between our look and our insert: the caller asks again."""
    _forget_old(session, now)
    row = session.get(SubmittedForm, digest, populate_existing=True)
    if row is None:
        session.add(
            SubmittedForm(
                digest=digest, state=PENDING, hold_until=now + hold, view=None, expires_at=expires_at
            )
        )
        session.flush()
        return Claim("new")
    if row.state == FILED:
        return Claim("filed", row.view if row.hold_until > now else None)
    taken = session.execute(  # the claim's process died while filing: take it over, one taker only
        update(SubmittedForm)
        .where(
            SubmittedForm.digest == digest, SubmittedForm.state == PENDING, SubmittedForm.hold_until <= now
        )
        .values(hold_until=now + hold)
        .execution_options(synchronize_session=False)
    )
    return Claim("new") if taken.rowcount == 1 else Claim("pending")


def finish(session: Session, digest: bytes, view: str | None, *, now: datetime, view_seconds: float) -> None:
    """``view``: the report was filed (its sealed receipt view, kept briefly for a double tap);
    ``None``: nothing was filed, so the next copy of the form may file it."""
    if view is None:
        session.execute(delete(SubmittedForm).where(SubmittedForm.digest == digest))
        return
    session.execute(
        update(SubmittedForm)
        .where(SubmittedForm.digest == digest)
        .values(state=FILED, view=view, hold_until=now + timedelta(seconds=view_seconds))
    )


def look(session: Session, digest: bytes, *, now: datetime) -> str | None:
    """``pending``, ``filed`` or ``None`` (never seen, or expired): a cheap look before storing files."""
    row = session.get(SubmittedForm, digest, populate_existing=True)
    if row is None or row.expires_at <= now:
        return None
    return row.state
