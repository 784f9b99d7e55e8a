"""The public submission's shape: what citizens may send and what they get back."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Accused(_Strict):
    name: Short | None = None
    unit: Short | None = None
    position: Short | None = None
    rank: Short | None = None
    region: Short | None = None


class Incident(_Strict):
    time: Short | None = Field(default=None, description="As people say it, e.g. 去年春节前后")
    place: Short | None = None


class Submitter(_Strict):
    name: Short | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    email: Short | None = None
    id_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    address: Short | None = None

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("not an email address")
        return value

    @field_validator("phone")
    @classmethod
    def _phone_shape(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[0-9+\-() ]{5,40}", value):
            raise ValueError("a phone number has digits, spaces, + - ( ) only")
        return value

    def is_empty(self) -> bool:
        return not any(vars(self).values())


class TipIn(_Strict):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)] = Field(
        description="What happened, in the reporter's words (required)."
    )
    anonymous: bool = True
    accused: Accused = Field(default_factory=Accused)
    incident: Incident = Field(default_factory=Incident)
    category_hint: Annotated[str, StringConstraints(max_length=48)] | None = None
    submitter: Submitter = Field(default_factory=Submitter)

    @field_validator("text")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in value):
            raise ValueError("text contains control characters")
        return value


class TipReceipt(BaseModel):
    receipt: str = Field(
        description="The receipt code (查询码), shown once. Keep it; it cannot be shown again."
    )
    registry_number: str
    message: str = "举报已收到。请妥善保存查询码，它只显示这一次。"
    message_en: str = "Your report was received. Keep the receipt code: it is shown only this once."
