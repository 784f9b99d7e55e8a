from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.platform.db import Base, IdColumn, UTCDateTime

SOURCES = ("public_report", "superior_assigned", "self_inspection", "voluntary_confession")
CHANNELS = ("web", "email", "hotline", "letter", "visit", "staff")


# The case-key columns of a clue registered since compartments: empty, no envelope (the columns stay NOT NULL,
# so older clues' rows and every reader of them are unchanged).
NO_CASE_COPY = b""


class Clue(Base):
    """A registered clue. Content, the accused person's details and the classification evidence are sealed
    under the clue's own content key (``clue_sealed``; case-key envelopes here for a clue registered before
    compartments); submitter details are an identity-key envelope. Plain columns are what the ledger
    filters on."""

    __tablename__ = "clues"
    __table_args__ = (
        Index("ix_clues_assignee_due", "assignee_id", "due_at", "id"),
        Index("ix_clues_status_due", "status", "due_at", "id"),
        Index("ix_clues_received", "received_at", "id"),
        # The statistics overview reads only these: an index-only scan instead of the envelope-laden heap.
        Index("ix_clues_stats", "status", "source", "channel", "handling_unit_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    registry_number: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(24), index=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16))
    real_name: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    needs_triage: Mapped[bool] = mapped_column(Boolean)
    taxonomy_version: Mapped[str] = mapped_column(String(32))

    # A clue registered before compartments: case-key envelopes. Since then ``NO_CASE_COPY``: its fields are
    # only in ``clue_sealed``, under its own content key, so a staff server's case key opens none of them.
    content: Mapped[bytes] = mapped_column(
        LargeBinary
    )  # case key: text (personal data masked), incident, hint
    accused: Mapped[bytes] = mapped_column(LargeBinary)  # case key: name, unit, position, rank, region
    classification: Mapped[bytes] = mapped_column(LargeBinary)  # case key: scores and evidence
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)  # identity key: submitter, unmasked text
    # Keyed hash of the accused person's normalised name and unit: links repeat reports without plaintext.
    accused_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # Keyed digests of the accused names (``classifier.accused_name_digests``): later reporter texts keep
    # the accused readable where the case key cannot be opened. NULL for clues registered before 0028.
    accused_names: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Keyed digests of everything the reporter wrote about the accused (``recusal.KeyedWords``): recusal
    # asks them which units are named, without opening the words. NULL for clues registered before 0035.
    accused_words: Mapped[bytes | None] = mapped_column(LargeBinary)
    accused_unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), index=True)

    handling_unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"), index=True)
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    categories: Mapped[list[ClueCategory]] = relationship(lazy="raise", cascade="all, delete-orphan")


class ClueCategory(Base):
    __tablename__ = "clue_categories"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(48), primary_key=True, index=True)


class RegistryCounter(Base):
    """The last registry number issued per prefix and year; incremented inside the registering transaction,
    so numbers have no gaps (a rolled-back registration gives its number back)."""

    __tablename__ = "registry_counters"

    prefix: Mapped[str] = mapped_column(String(10), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer)


# --- Lifecycle, routing, deadlines, supervision (issue 8) -------------------------------------------
# Plain columns carry only codes, ids, dates and flags; every free text (reasons, summaries, feedback,
# opinions, reports) is a case-key envelope bound to "<table>/<row id>/<field>".


class ClueState(Base):
    """The lifecycle columns of a clue, one row per clue that has left ``registered``.

    Kept apart from ``clues`` so intake's insert stays as it was; the ledger joins it (outer)."""

    __tablename__ = "clue_states"
    __table_args__ = (Index("ix_clue_states_key_due", "key_clue", "clue_id"),)

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    stage_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposal_method: Mapped[str | None] = mapped_column(String(24))
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approver_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    finding: Mapped[str | None] = mapped_column(String(16))
    concluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared: Mapped[bool] = mapped_column(Boolean, default=False)  # 澄清正名 record exists
    referral_target: Mapped[str | None] = mapped_column(String(24))
    referred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # a real-name reporter told whether the report was accepted (15 working days; a referral counts)
    acceptance_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    routing_rule_id: Mapped[str | None] = mapped_column(String(36))
    key_clue: Mapped[bool] = mapped_column(Boolean, default=False)  # 重点线索
    supervising_leader_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    leader_takes_case: Mapped[bool] = mapped_column(Boolean, default=False)  # 包案
    difficult: Mapped[bool] = mapped_column(Boolean, default=False)  # 疑难 (has a consultation)
    near_signature: Mapped[bytes | None] = mapped_column(LargeBinary)  # MinHash of the masked text


class ClueTransition(Base):
    """One step in a clue's history: who, when, from, to, the approver, a sealed reason."""

    __tablename__ = "clue_transitions"
    __table_args__ = (Index("ix_clue_transitions_clue_at", "clue_id", "at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    approver_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    decision_on: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the collective decision
    details: Mapped[str] = mapped_column(String(1000), default="{}")  # JSON: codes and ids only
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # case key: reason, summary, feedback…


class ClueTransfer(Base):
    """A hand-off: to a unit of ours, to another organ, or an out-of-scope referral."""

    __tablename__ = "clue_transfers"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # unit | organ | investigation | referral
    to_unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    target: Mapped[str | None] = mapped_column(String(100))  # organ name or referral code
    document_number: Mapped[str | None] = mapped_column(String(64))
    transferred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expected_feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class RoutingRule(Base):
    """Admin-edited data: category and accused unit decide the handling unit and a default assignee."""

    __tablename__ = "routing_rules"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    category: Mapped[str | None] = mapped_column(String(48))  # None: any
    accused_unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))  # None: any; else subtree
    handling_unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"))
    default_assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeadlineRule(Base):
    """A configured time limit for a stage, optionally only for a source and/or category."""

    __tablename__ = "deadline_rules"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[str | None] = mapped_column(String(24))
    category: Mapped[str | None] = mapped_column(String(48))
    working_days: Mapped[int | None] = mapped_column(Integer)
    months: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClueReminder(Base):
    """催办单: issued once per clue and deadline when the deadline passes."""

    __tablename__ = "clue_reminders"
    __table_args__ = (Index("ix_clue_reminders_clue_due", "clue_id", "due_at", unique=True),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handling_unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    stage: Mapped[str | None] = mapped_column(String(24))  # None: clues.due_at; else a Stage


class ProgressRequest(Base):
    """督办: an interim deadline and a progress report asked of the handler."""

    __tablename__ = "clue_progress_requests"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    request: Mapped[bytes | None] = mapped_column(LargeBinary)  # case key
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_by: Mapped[str | None] = mapped_column(String(64))
    report: Mapped[bytes | None] = mapped_column(LargeBinary)  # case key


class Consultation(Base):
    """疑难线索会商: participants, date, opinions and conclusion (sealed)."""

    __tablename__ = "clue_consultations"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    held_on: Mapped[datetime] = mapped_column(UTCDateTime)
    participant_count: Mapped[int] = mapped_column(Integer)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    record: Mapped[bytes] = mapped_column(LargeBinary)  # case key: participants, opinions, conclusion


class TransferRequest(Base):
    """A handler asks for their clue to go to another unit; a supervisor approves (the transfer is made,
    with recusal) or refuses. Reasons are case-key envelopes bound to ``transfer_requests/<id>/…``."""

    __tablename__ = "transfer_requests"
    __table_args__ = (Index("ix_transfer_requests_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    to_unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"))
    reason: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | refused
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[bytes | None] = mapped_column(LargeBinary)


# --- Reporter communication the rules ask for (issue 19) ----------------------------------------------
# Written by ``service.messages.contact`` (which masks reporter words); here so the registry's reminders
# can see what is due.


class FollowUp(Base):
    """回访: a follow-up call or visit to the reporter after a finding. ``due_at`` is the deadline that
    applied when it was recorded (the rule kind ``follow_up``), kept to show whether it was late."""

    __tablename__ = "clue_follow_ups"

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))  # phone | visit | letter | message
    visitor_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    outcome: Mapped[str] = mapped_column(String(16))  # reached | not_reached | declined
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[bytes | None] = mapped_column(LargeBinary)  # case key, masked (clue_follow_ups/<id>/note)
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)  # identity key: the unmasked words
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Objection(Base):
    """异议: a real-name reporter's objection to a finding, and its handling. The statement is masked for
    staff (case key), the original sealed to the identity key, the reporter's own copy and the answer to the
    reporter sealed to the reporter key (the status page reads them without the case key)."""

    __tablename__ = "clue_objections"
    __table_args__ = (Index("ix_clue_objections_status", "status", "received_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # status_page | phone | letter | visit
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # received | reviewing | rejected | resolved
    result: Mapped[str | None] = mapped_column(String(16))  # resolved: finding_kept | finding_changed
    statement: Mapped[bytes] = mapped_column(LargeBinary)  # case key (clue_objections/<id>/statement)
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)  # identity key: the unmasked words
    reporter_copy: Mapped[bytes | None] = mapped_column(LargeBinary)  # reporter key: as written
    answer: Mapped[bytes | None] = mapped_column(LargeBinary)  # case key: reason or result, for staff
    answer_copy: Mapped[bytes | None] = mapped_column(LargeBinary)  # reporter key: the same, for the reporter
    recorded_by: Mapped[str] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(64))


class ClueRecusal(Base):
    """A person recused from one clue (a conflict of interest beyond the unit rule): their wraps of the clue
    are removed, the handling unit's key no longer opens it (its members hold individual wraps instead), and
    they cannot be assigned it (``registry.recusal.recuse``)."""

    __tablename__ = "clue_recusals"

    clue_id: Mapped[str] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    staff_id: Mapped[str] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Sealed to the clue's key (else the case key), ``clue_recusals/<clue id>/<staff id>/reason``; none on
    # recusals recorded before reasons were asked for.
    reason: Mapped[bytes | None] = mapped_column(LargeBinary)


def recusal_reason_binding(clue_id: str, staff_id: str) -> str:
    return f"clue_recusals/{clue_id}/{staff_id}/reason"
