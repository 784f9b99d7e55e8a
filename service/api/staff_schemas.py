from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.auth.permissions import Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    kind: Annotated[str, StringConstraints(max_length=32)] = "other"
    parent_id: str | None = None


class UnitChange(BaseModel):
    """The whole of what may change: the name and the parent (null: a top unit)."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    parent_id: str | None = None


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alias: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class UnitOut(BaseModel):
    id: str
    name: str
    kind: str
    parent_id: str | None
    aliases: list[str] = Field(description="Other names reporters use for the unit (recusal matches them).")


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    roles: list[Role] = Field(min_length=1)
    unit_id: str | None = None


class StaffUnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: str | None = Field(
        max_length=36, description="The unit the person moves to; null: out of any unit"
    )


class StaffOut(BaseModel):
    id: str
    name: str
    roles: list[str]
    unit_id: str | None
    disabled: bool


class MeOut(BaseModel):
    id: str
    name: str
    roles: list[str]
    unit: UnitOut | None


class TokenOut(BaseModel):
    id: str
    expires_at: datetime
    token: str = Field(description="The bearer token, shown once.")
