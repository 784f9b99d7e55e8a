"""The classify domain's public interface. Other domains import only this module.

Invariants: results never contain report text beyond offsets; nothing here logs text or personal data.
"""

from __future__ import annotations

import threading

from . import dedup, pii
from .engine import Engine
from .models import ClassificationResult, Evidence, PersonalDataSpan, Taxonomy
from .taxonomy import TaxonomyError, load_taxonomy

__all__ = [
    "ClassificationResult",
    "Evidence",
    "PersonalDataSpan",
    "Taxonomy",
    "TaxonomyError",
    "classify",
    "current_taxonomy",
    "find_personal_data",
    "mask_personal_data",
    "near_duplicate_signature",
    "reload_taxonomy",
    "signature_similarity",
]

_lock = threading.Lock()
_engine: Engine | None = None


def _current_engine() -> Engine:
    global _engine
    engine = _engine
    if engine is None:
        with _lock:
            if _engine is None:
                _engine = Engine(load_taxonomy())
            engine = _engine
    return engine


def classify(text: str, category_hint: str | None = None) -> ClassificationResult:
    """Classify one report. ``category_hint`` is the category the reporter picked, if any: a weak prior."""
    return _current_engine().classify(text, category_hint=category_hint)


def current_taxonomy() -> Taxonomy:
    return _current_engine().taxonomy


def reload_taxonomy() -> Taxonomy:
    """Load the configured taxonomy file again. On error the old taxonomy stays in force and the error is raised."""
    global _engine
    engine = Engine(load_taxonomy())
    with _lock:
        _engine = engine
    return engine.taxonomy


def find_personal_data(text: str) -> list[PersonalDataSpan]:
    return pii.find_personal_data(text)


def mask_personal_data(text: str, spans: list[PersonalDataSpan]) -> str:
    return pii.mask_personal_data(text, spans)


def near_duplicate_signature(text: str) -> bytes:
    return dedup.near_duplicate_signature(text)


def signature_similarity(a: bytes, b: bytes) -> float:
    return dedup.signature_similarity(a, b)
