from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.platform.db import Base, IdColumn, UTCDateTime


class Job(Base):
    """One unit of background work. ``payload`` is JSON holding ids only — never content or identity,
    because job rows are read by operators and kept after they finish.

    Lifecycle: ``queued`` → ``running`` (leased to one worker until ``locked_until``) → ``done``; a failure
    goes back to ``queued`` with a later ``run_at`` until ``max_attempts``, then ``dead``. A lease that runs
    out (the worker died) makes the job claimable again."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "status", "run_at", "id"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    task: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    # Uniqueness for "at most one of these": periodic slots ("retention@2026-11-26T10:00") or a caller's key.
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(128))  # exception type only: messages may hold data
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
