"""Value objects returned by the classifier. All are frozen so results can be shared and cached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

EvidenceKind = Literal["term", "alias", "pattern", "counter", "negated", "hint", "model"]
PersonalDataKind = Literal[
    "mobile", "landline", "id_number", "bank_card", "email", "plate", "name", "address"
]

OTHER = "other"


class Evidence(NamedTuple):
    """One piece of evidence: a term or pattern that fired, with its span in the ORIGINAL text.

    A named tuple (immutable, like the frozen dataclasses here): a report yields dozens of these, and a
    frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) costs about twice as much.
    """

    id: str
    category: str
    start: int
    end: int
    weight: float
    kind: EvidenceKind

    def to_dict(self) -> dict[str, Any]:
        # Explicit: a plain dict per evidence, in the order staff see them (this runs per tip).
        return {
            "id": self.id,
            "category": self.category,
            "start": self.start,
            "end": self.end,
            "weight": self.weight,
            "kind": self.kind,
        }


@dataclass(frozen=True, slots=True)
class ClassificationResult:
    """Labels, per-category confidence and the evidence behind them.

    Invariant: ``other`` never appears with another label; ``labels == []`` iff ``needs_triage``, which
    means "not confident": no category reached the model's triage threshold (rules only: no term matched
    enough). ``scores`` are calibrated probabilities with the model (0.5 = the label threshold otherwise).
    """

    labels: list[str]
    needs_triage: bool
    scores: dict[str, float]
    evidence: list[Evidence]
    taxonomy_version: str
    model_version: str | None = None  # the learned model's artifact version; None: rules only

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "needs_triage": self.needs_triage,
            "scores": dict(self.scores),
            "evidence": [e.to_dict() for e in self.evidence],
            "taxonomy_version": self.taxonomy_version,
            "model_version": self.model_version,
        }


@dataclass(frozen=True, slots=True)
class PersonalDataSpan:
    """A span of the original text that identifies a person (usually the reporter)."""

    start: int
    end: int
    kind: PersonalDataKind


@dataclass(frozen=True, slots=True)
class Pattern:
    id: str
    regex: str
    weight: float
    negatable: bool = True


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    tier: str
    name: str
    description: str
    requires_actor: bool = False
    terms: dict[str, float] = field(default_factory=dict)
    patterns: tuple[Pattern, ...] = ()
    counter_terms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Thresholds:
    label: float = 1.0
    secondary_ratio: float = 0.35
    other: float = 1.0
    no_actor_factor: float = 0.5


@dataclass(frozen=True, slots=True)
class Negation:
    cues: tuple[str, ...] = ()
    window: int = 6
    scope_breakers: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Taxonomy:
    version: str
    categories: tuple[Category, ...]
    thresholds: Thresholds
    negation: Negation
    actors: dict[str, float]
    aliases: dict[str, str]
    source: str = ""

    @property
    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def category(self, category_id: str) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)
