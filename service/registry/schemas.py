from __future__ import annotations

from datetime import datetime
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
    classification: dict[str, Any] = Field(
        description="Taxonomy version, scores and the evidence that fired."
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee_id: str
