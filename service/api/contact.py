"""Reporter communication the rules ask for: follow-up calls and visits (回访) and a real-name reporter's
objections to a finding (异议) with their handling: ``/api/v1/clues/{id}/follow-ups``,
``/api/v1/clues/{id}/objections``, ``/api/v1/objections/{id}/decision`` (receipt holders object through
``POST /api/v1/receipt/objections``, in ``api/messages.py``). Thin: one service call each; the service
authorises and audits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.http.deps import RuntimeDep, SessionDep
from service.http.errors import STAFF_ERRORS
from service.http.staff_auth import CurrentStaff
from service.messages import contact
from service.messages.contact import MAX_NOTE_CHARS

router = APIRouter(prefix="/api/v1", tags=["reporter contact"], responses=STAFF_ERRORS)

ERRORS = {
    403: {"description": "The caller's role may not do this"},
    404: {"description": "No such clue or objection, or not visible to the caller"},
    409: {
        "description": "Not possible now: the clue has no finding, the reporter is anonymous, an objection "
        "is already being handled, or the objection is not in a state for this decision"
    },
    422: {"description": "Missing, empty or too long field, or a date in the future"},
}


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    visited_on: date = Field(description="The day of the call or visit (not in the future)")
    channel: Literal["phone", "visit", "letter", "message"]
    outcome: Literal["reached", "not_reached", "declined"]
    note: Annotated[str, Field(max_length=MAX_NOTE_CHARS)] = Field(
        default="", description="What the reporter said; masked like every reporter text"
    )
    visitor_id: Annotated[str, Field(max_length=36)] | None = Field(
        default=None, description="Who called or visited (default: the caller)"
    )


class FollowUpOut(BaseModel):
    id: str
    visited_at: datetime
    channel: str
    visitor_id: str
    visitor_name: str
    outcome: str
    note: str = Field(description="Personal data masked")
    due_at: datetime | None = Field(description="The deadline that applied (real-name reporters)")
    late: bool
    recorded_at: datetime


class FollowUpsOut(BaseModel):
    due_at: datetime | None = Field(description="When a 回访 is due (a concluded real-name clue), else null")
    done: bool
    alert: str | None = Field(description="done, ok, half, warning, overdue; null when none is due")
    items: list[FollowUpOut]


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["phone", "letter", "visit"]
    received_on: date = Field(description="The day it was received (not in the future)")
    text: Annotated[str, Field(min_length=1, max_length=MAX_NOTE_CHARS)] = Field(
        description="The objection as the reporter made it; masked for staff"
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["review", "reject", "resolve"] = Field(
        description="review: accept for review; reject: with a reason; resolve: the review's result"
    )
    text: Annotated[str, Field(max_length=MAX_NOTE_CHARS)] = Field(
        default="", description="What the reporter is told (required to reject or resolve)"
    )
    result: Literal["finding_kept", "finding_changed"] | None = None


class ObjectionOut(BaseModel):
    id: str
    channel: str
    received_at: datetime
    status: str = Field(description="received, reviewing, rejected, resolved")
    result: str | None
    statement: str = Field(description="Personal data masked")
    answer: str
    due_at: datetime | None
    overdue: bool
    reviewed_at: datetime | None
    closed_at: datetime | None


def _follow_up_out(v: contact.FollowUpView) -> FollowUpOut:
    return FollowUpOut(
        id=v.id,
        visited_at=v.visited_at,
        channel=v.channel,
        visitor_id=v.visitor_id,
        visitor_name=v.visitor_name,
        outcome=v.outcome,
        note=v.note,
        due_at=v.due_at,
        late=v.late,
        recorded_at=v.recorded_at,
    )


def _objection_out(v: contact.ObjectionView) -> ObjectionOut:
    return ObjectionOut(
        id=v.id,
        channel=v.channel,
        received_at=v.received_at,
        status=v.status,
        result=v.result,
        statement=v.statement,
        answer=v.answer,
        due_at=v.due_at,
        overdue=v.overdue,
        reviewed_at=v.reviewed_at,
        closed_at=v.closed_at,
    )


@router.get(
    "/clues/{clue_id}/follow-ups",
    summary="A clue's follow-up calls and visits and whether one is due",
    response_model=FollowUpsOut,
    responses=ERRORS,
)
async def list_follow_ups(
    clue_id: str, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> FollowUpsOut:
    """The 回访 records (notes masked; an audited read) and, for a concluded real-name clue, the deadline
    from the rule kind ``follow_up``."""
    state = await contact.follow_ups(session, clue_id=clue_id, principal=principal, runtime=runtime)
    return FollowUpsOut(
        due_at=state.due_at,
        done=state.done,
        alert=state.alert,
        items=[_follow_up_out(i) for i in state.items],
    )


@router.post(
    "/clues/{clue_id}/follow-ups",
    summary="Record a follow-up call or visit to the reporter",
    status_code=201,
    response_model=FollowUpOut,
    responses=ERRORS,
)
async def record_follow_up(
    clue_id: str, body: FollowUpIn, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> FollowUpOut:
    """Record a 回访 of a concluded clue; the note is masked, its original sealed to the identity key."""
    view = await contact.record_follow_up(
        session,
        clue_id=clue_id,
        principal=principal,
        runtime=runtime,
        visited_on=body.visited_on,
        channel=body.channel,
        outcome=body.outcome,
        note=body.note,
        visitor_id=body.visitor_id,
    )
    return _follow_up_out(view)


@router.get(
    "/clues/{clue_id}/objections",
    summary="A clue's objections to the finding, their handling and deadlines",
    response_model=list[ObjectionOut],
    responses=ERRORS,
)
async def list_objections(
    clue_id: str, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> list[ObjectionOut]:
    """Objections, oldest first (statements masked; an audited read), each with its deadline from the
    rule kind ``objection``."""
    views = await contact.objections(session, clue_id=clue_id, principal=principal, runtime=runtime)
    return [_objection_out(v) for v in views]


@router.post(
    "/clues/{clue_id}/objections",
    summary="Record an objection made by phone, letter or in person",
    status_code=201,
    response_model=ObjectionOut,
    responses=ERRORS,
)
async def record_objection(
    clue_id: str, body: ObjectionIn, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> ObjectionOut:
    """A real-name reporter's objection to the finding of a concluded clue, as staff took it down."""
    view = await contact.record_objection(
        session,
        clue_id=clue_id,
        principal=principal,
        runtime=runtime,
        channel=body.channel,
        received_on=body.received_on,
        text=body.text,
    )
    return _objection_out(view)


@router.post(
    "/objections/{objection_id}/decision",
    summary="Handle an objection: accept for review, reject with a reason, or record the result",
    response_model=ObjectionOut,
    responses=ERRORS,
)
async def decide_objection(
    objection_id: str, body: DecisionIn, principal: CurrentStaff, session: SessionDep, runtime: RuntimeDep
) -> ObjectionOut:
    """The reporter reads the answer on the status page (no staff name)."""
    view = await contact.decide_objection(
        session,
        objection_id=objection_id,
        principal=principal,
        runtime=runtime,
        decision=body.decision,
        text=body.text,
        result=body.result,
    )
    return _objection_out(view)
