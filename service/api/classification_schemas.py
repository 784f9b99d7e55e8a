"""Request and response bodies of the classification API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[str] = Field(
        min_length=1,
        max_length=20,
        description="Category ids of the taxonomy in force; `other` stands alone.",
    )
    reason: str = Field(
        min_length=1,
        max_length=2000,
        description="Why; sealed to the clue's own key (the case key for a clue sealed before compartments).",
    )


class CorrectionOut(BaseModel):
    id: str
    old_labels: list[str]
    new_labels: list[str]
    taxonomy_version: str
    reason: str
    actor: str
    created_at: datetime


class ClassificationOut(BaseModel):
    clue_id: str
    labels: list[str] = Field(description="In force: the classifier's, or the latest correction's.")
    needs_triage: bool
    taxonomy_version: str
    corrected: bool
    machine: dict[str, Any] = Field(
        description="The classifier's result at intake: labels, needs_triage, scores, evidence (term or "
        "pattern, category, span on the masked text, weight, kind) and its taxonomy_version."
    )
    corrections: list[CorrectionOut] = Field(description="Oldest first.")


class TaxonomyCategoryOut(BaseModel):
    id: str
    tier: str
    name: str
    description: str
    requires_actor: bool
    terms: int
    patterns: int
    counter_terms: int


class TaxonomyOut(BaseModel):
    version: str
    categories: list[TaxonomyCategoryOut]
