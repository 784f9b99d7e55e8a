from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ClueSummary(BaseModel):
    """A ledger row without content: listing is not reading."""

    id: str
    registry_number: str
    source: str
    channel: str
    status: str
    categories: list[str]
    needs_triage: bool
    real_name: bool
    received_at: datetime
    due_at: datetime
    assignee_id: str | None
    handling_unit_id: str | None


class CluePage(BaseModel):
    items: list[ClueSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class AccusedOut(BaseModel):
    name: str | None = None
    unit: str | None = None
    position: str | None = None
    rank: str | None = None
    region: str | None = None


class ClueDetail(ClueSummary):
    text: str = Field(description="The report text as staff may see it: personal data masked.")
    accused: AccusedOut
    incident: dict[str, Any]
    category_hint: str | None
    notes: dict[str, str | None] = Field(
        default_factory=dict,
        description="Other texts the reporter gave with the report (a caller's call-back instructions), "
        "masked like the text.",
    )
    classification: dict[str, Any] = Field(
        description="Taxonomy version, scores and the evidence that fired."
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee_id: str
    confirm_recusal: bool = Field(
        default=False,
        description="The supervisor confirms the assignee is not of the accused's unit, where the unit as "
        "reported resembles the assignee's (otherwise 409 recusal_unconfirmed). Audited.",
    )


# --- Lifecycle, routing, supervision (issue 8) -------------------------------------------------------


class TransitionIn(BaseModel):
    """One step in the lifecycle. Which fields a step needs: triage (reason; route), refer (target:
    12388|petitions|12345|court), transfer (to_unit_id, document_number, expected_feedback_on?), accept,
    dispose (method, approver_id, decision_on), send_on (kind: investigation|organ, target, document_number,
    approver_id, decision_on), reopen, conclude (finding, summary, feedback, approver_id, decision_on;
    clearing_record and false_report_note only with finding=unfounded), archive."""

    model_config = ConfigDict(extra="forbid")
    action: str = Field(max_length=24)
    reason: str = Field(min_length=1, max_length=5000)
    approver_id: str | None = Field(default=None, max_length=36)
    decision_on: date | None = None
    method: str | None = Field(default=None, max_length=24)
    kind: str | None = Field(default=None, max_length=24)
    target: str | None = Field(default=None, max_length=100)
    to_unit_id: str | None = Field(default=None, max_length=36)
    document_number: str | None = Field(default=None, max_length=64)
    expected_feedback_on: date | None = None
    confirm_recusal: bool = False  # transfer: as for an assignment
    finding: str | None = Field(default=None, max_length=16)
    summary: str | None = Field(default=None, max_length=5000)
    feedback: str | None = Field(default=None, max_length=5000)
    clearing_record: str | None = Field(default=None, max_length=5000)
    false_report_note: str | None = Field(default=None, max_length=5000)
    attachment_ids: list[str] = Field(default_factory=list, max_length=20)
    route: bool = True


class TransitionOut(BaseModel):
    id: str
    action: str
    from_status: str
    to_status: str
    actor: str
    at: datetime
    approver_id: str | None
    details: dict[str, Any]


class HistoryItem(TransitionOut):
    reason: str | None = None
    summary: str | None = None
    feedback: str | None = None
    clearing_record: str | None = None
    false_report_note: str | None = None


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee_id: str = Field(max_length=36)
    reason: str = Field(min_length=1, max_length=2000)
    confirm_recusal: bool = False  # as for an assignment


class RoutingRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handling_unit_id: str = Field(max_length=36)
    category: str | None = Field(default=None, max_length=48)
    accused_unit_id: str | None = Field(default=None, max_length=36)
    default_assignee_id: str | None = Field(default=None, max_length=36)
    priority: int = Field(default=100, ge=0, le=100000)
    enabled: bool = True


class RoutingRuleOut(RoutingRuleIn):
    id: str


class DeadlineRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str = Field(max_length=32)
    source: str | None = Field(default=None, max_length=24)
    category: str | None = Field(default=None, max_length=48)
    working_days: int | None = None
    months: int | None = None


class DeadlineLimitIn(BaseModel):
    """A rule's new limit: exactly one of working_days (1-365) or months (1-24)."""

    model_config = ConfigDict(extra="forbid")
    working_days: int | None = None
    months: int | None = None


class DeadlineRuleOut(DeadlineRuleIn):
    id: str


class SupervisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_clue: bool
    leader_id: str | None = Field(default=None, max_length=36)
    leader_takes_case: bool = False
    reason: str = Field(min_length=1, max_length=2000)


class ProgressRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    due_on: date
    note: str = Field(default="", max_length=2000)


class ProgressReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report: str = Field(min_length=1, max_length=5000)


class ConsultationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    held_on: date
    participants: list[str] = Field(min_length=1, max_length=50)
    opinions: list[str] = Field(default_factory=list, max_length=50)
    conclusion: str = Field(min_length=1, max_length=5000)


class SearchHit(ClueSummary):
    same_accused_count: int = Field(description="Clues naming the same accused person, this one included")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=5000)


class TransferOut(BaseModel):
    id: str
    kind: str = Field(description="unit | organ | investigation | referral")
    to_unit_id: str | None
    target: str | None
    document_number: str | None
    transferred_at: datetime
    expected_feedback_at: datetime | None
    feedback_at: datetime | None
    created_by: str


class DocumentOut(BaseModel):
    id: str = Field(description="The attachment record; download with GET /api/v1/attachments/{id}")


class RecusalIn(BaseModel):
    staff_id: str = Field(max_length=36, description="The person recused from this clue")
    reason: str = Field(
        max_length=2000,
        description="Why (required; sealed like the clue's other items, shown to its holders)",
    )


class RecusalOut(BaseModel):
    clue_id: str
    staff_id: str
    wraps_removed: int = Field(description="Wraps of the clue's content key to the person's keys removed")
