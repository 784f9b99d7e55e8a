"""Per-category precision/recall/F1 and macro-F1 for labelled reports (dev set, staff corrections)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from service.classification.results import OTHER


@dataclass(frozen=True, slots=True)
class CategoryScore:
    category: str
    support: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    per_category: list[CategoryScore]
    macro_f1: float
    count: int

    def lines(self) -> list[str]:
        out = [f"{'category':<26}{'support':>8}{'P':>8}{'R':>8}{'F1':>8}"]
        for s in self.per_category:
            out.append(f"{s.category:<26}{s.support:>8}{s.precision:>8.3f}{s.recall:>8.3f}{s.f1:>8.3f}")
        out.append(f"reports: {self.count}")
        out.append(f"macro-F1: {self.macro_f1:.3f}")
        return out


def _as_set(labels: Sequence[str]) -> set[str]:
    # An empty prediction (needs triage) counts as `other`, as the CLI contract says.
    return set(labels) if labels else {OTHER}


def evaluate(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> EvaluationReport:
    """``pairs`` of (gold labels, predicted labels). Macro-F1 averages the categories present in the gold."""
    gold_sets: list[set[str]] = []
    pred_sets: list[set[str]] = []
    for gold, predicted in pairs:
        gold_sets.append(_as_set(gold))
        pred_sets.append(_as_set(predicted))
    present = sorted({c for g in gold_sets for c in g})
    scores: list[CategoryScore] = []
    for category in present:
        tp = sum(1 for g, p in zip(gold_sets, pred_sets, strict=True) if category in g and category in p)
        fp = sum(1 for g, p in zip(gold_sets, pred_sets, strict=True) if category not in g and category in p)
        fn = sum(1 for g, p in zip(gold_sets, pred_sets, strict=True) if category in g and category not in p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(CategoryScore(category, tp + fn, precision, recall, f1))
    macro = sum(s.f1 for s in scores) / len(scores) if scores else 0.0
    return EvaluationReport(per_category=scores, macro_f1=macro, count=len(gold_sets))
