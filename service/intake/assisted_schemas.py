"""What operators and supervisors type in: calls, additions, letters, visits and staff-sourced clues."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from service.intake.schemas import Accused, Incident

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
OptionalLongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]
CategoryHint = Annotated[str, StringConstraints(max_length=48)]

_PHONE = re.compile(r"[0-9+\-() ]{3,40}")


def _no_controls(value: str | None) -> str | None:
    if value and any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value):
        raise ValueError("contains control characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Person(_Strict):
    """A writer's, visitor's or caller's details: sealed with the identity key, never shown to staff."""

    name: Short | None = None
    phone: Phone | None = None
    address: Short | None = None
    id_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    email: Short | None = None

    @field_validator("phone")
    @classmethod
    def _phone_shape(cls, value: str | None) -> str | None:
        if value and not _PHONE.fullmatch(value):
            raise ValueError("a phone number has digits, spaces, + - ( ) only")
        return value


class _Report(_Strict):
    anonymous: bool = True
    accused: Accused = Field(default_factory=Accused)
    incident: Incident = Field(default_factory=Incident)
    category_hint: CategoryHint | None = None


class CallIn(_Report):
    call_started_at: datetime = Field(description="When the call began (ISO 8601 with zone).")
    duration_seconds: int = Field(ge=0, le=24 * 3600, description="How long the call lasted.")
    caller_number: Phone | None = Field(default=None, description="Identity key only; never shown to staff.")
    caller_name: Short | None = Field(default=None, description="Real-name callers only (identity key).")
    callback_allowed: bool = Field(default=False, description="Whether the caller may be called back.")
    callback_how: Short | None = Field(
        default=None, description="How and when to call back, e.g. 只在工作日晚上打，不要留言 (case key)."
    )
    callback_number: Phone | None = Field(
        default=None, description="Another number for call-backs, if the caller gave one (identity key)."
    )
    summary: LongText = Field(description="The operator's summary of the call (required).")
    caller_words: OptionalLongText | None = Field(
        default=None, description="The caller's own words where the operator noted them."
    )

    _controls = field_validator("summary", "caller_words", "callback_how")(_no_controls)

    @field_validator("caller_number", "callback_number")
    @classmethod
    def _phone_shape(cls, value: str | None) -> str | None:
        if value and not _PHONE.fullmatch(value):
            raise ValueError("a phone number has digits, spaces, + - ( ) only")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CallIn:
        if not self.anonymous and not self.caller_name:
            raise ValueError("a real-name call needs caller_name")
        if self.callback_number and not self.callback_allowed:
            raise ValueError("callback_number given but callback_allowed is false")
        return self


class CallReceipt(BaseModel):
    clue_id: str
    registry_number: str
    receipt: str = Field(description="Shown once: read it aloud to the caller; it is not stored.")
    receipt_groups: list[str] = Field(description="The code in groups of five, for reading aloud.")
    message: str = "来电已登记。请把查询码分组念给来电人，本页关闭后无法再次查看。"
    message_en: str = "Call registered. Read the code to the caller group by group; it cannot be shown again."


class AdditionIn(_Strict):
    receipt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] = Field(
        description="The code the caller reads out."
    )
    text: LongText = Field(description="What the caller adds (add-only: nothing about the clue is returned).")
    call_started_at: datetime | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=24 * 3600)

    _controls = field_validator("text")(_no_controls)


class AdditionOut(BaseModel):
    addition_id: str
    message: str = "补充内容已记录。查询码已标记为“已口头告知”，来电人下次上网查询时需更换新码。"
    message_en: str = "Added. The code is marked as read aloud: the caller must replace it at next web use."


class LetterIn(_Report):
    postmark_date: date = Field(description="The date on the postmark.")
    received_date: date | None = Field(default=None, description="When it arrived (default: today).")
    text: LongText = Field(description="The letter's content as typed in (or a faithful summary).")
    writer: Person = Field(default_factory=Person, description="Identity key only.")
    page_count: int | None = Field(default=None, ge=1, le=1000)

    _controls = field_validator("text")(_no_controls)

    @model_validator(mode="after")
    def _consistent(self) -> LetterIn:
        if self.received_date and self.received_date < self.postmark_date:
            raise ValueError("received_date is before postmark_date")
        if not self.anonymous and not self.writer.name:
            raise ValueError("a real-name letter needs writer.name")
        return self


class VisitIn(_Report):
    visit_date: date
    received_by: Required = Field(description="Who received the visitor (names of the staff present).")
    text: LongText = Field(description="What the visitor reported.")
    visitor: Person = Field(default_factory=Person, description="Identity key only.")

    _controls = field_validator("text")(_no_controls)

    @model_validator(mode="after")
    def _consistent(self) -> VisitIn:
        if not self.anonymous and not self.visitor.name:
            raise ValueError("a real-name visit needs visitor.name")
        return self


class RegisteredOut(BaseModel):
    clue_id: str
    registry_number: str
    receipt: str | None = Field(
        default=None, description="Letters and visits: the code to hand or send to the reporter, shown once."
    )


# --- Staff-entered sources ---------------------------------------------------------------------------


class _StaffSource(_Strict):
    text: LongText = Field(description="What the clue is about.")
    accused: Accused = Field(default_factory=Accused)
    incident: Incident = Field(default_factory=Incident)
    category_hint: CategoryHint | None = None

    _controls = field_validator("text")(_no_controls)


class SuperiorAssignedIn(_StaffSource):
    source: Literal["superior_assigned"]
    assigning_body: Required = Field(description="The body that assigned the clue (交办单位).")
    document_number: Required = Field(description="Its document number (交办文号).")
    received_date: date
    deadline: date = Field(description="The deadline it set; becomes the clue's due date (end of that day).")

    @model_validator(mode="after")
    def _deadline_after_receipt(self) -> SuperiorAssignedIn:
        if self.deadline < self.received_date:
            raise ValueError("deadline is before received_date")
        return self


class SelfInspectionIn(_StaffSource):
    source: Literal["self_inspection"]
    inspection: Required = Field(description="Which inspection found it (自查名称).")
    recorded_by: Required = Field(description="Who recorded it.")
    found_date: date | None = None


class Officer(_Strict):
    name: Required
    unit: Short | None = None
    position: Short | None = None
    rank: Short | None = None
    region: Short | None = None
    id_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    phone: Phone | None = None


class VoluntaryConfessionIn(_Strict):
    source: Literal["voluntary_confession"]
    text: LongText = Field(description="What the officer reports about himself or herself.")
    officer: Officer = Field(description="The officer's identity: identity key only.")
    confession_date: date
    received_by: Required = Field(description="Who took the confession.")
    incident: Incident = Field(default_factory=Incident)
    category_hint: CategoryHint | None = None

    _controls = field_validator("text")(_no_controls)


StaffSourceIn = Annotated[
    SuperiorAssignedIn | SelfInspectionIn | VoluntaryConfessionIn, Field(discriminator="source")
]


class UploadOut(BaseModel):
    id: str = Field(description="The stored file's record (attachment or recording addition).")


class AdditionView(BaseModel):
    id: str
    kind: str = Field(
        description="call_record, operator_addition, call_recording or caller_confirmation "
        "(the caller's confirmation or correction from the status page)."
    )
    content: dict[str, Any]
    created_at: datetime
