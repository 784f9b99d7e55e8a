"""The classify domain's public interface. Other domains import only this module.

Invariants: results never contain report text beyond offsets; nothing here logs text or personal data.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from service.classification import dedup, model, pii
from service.classification.engine import Engine
from service.classification.results import OTHER, ClassificationResult, Evidence, PersonalDataSpan, Taxonomy
from service.classification.taxonomy import (
    TaxonomyError,
    configured_taxonomy_path,
    load_taxonomy,
    set_configured_path,
)
from service.registry import categories as registry_categories

__all__ = [
    "ClassificationResult",
    "Evidence",
    "PersonalDataSpan",
    "Taxonomy",
    "TaxonomyError",
    "classify",
    "current_model",
    "current_taxonomy",
    "follow_taxonomy",
    "InvalidLabelsError",
    "find_personal_data",
    "labelled_example",
    "validate_labels",
    "validate_taxonomy_file",
    "mask_personal_data",
    "MaskedTexts",
    "mask_texts",
    "near_duplicate_signature",
    "load_name_segmenter",
    "NEAR_DUPLICATE_KEY_LABEL",
    "reload_taxonomy",
    "signature_similarity",
    "taxonomy_in_force",
]


class InvalidLabelsError(ValueError):
    """A staff correction names unknown categories, repeats one, or puts `other` beside another label."""


_lock = threading.Lock()
_engine: Engine | None = None
# The file the engine in force came from, and a count of engines put in force: worker processes follow it.
_in_force: tuple[Path, int] = (Path(), 0)


def _build_engine(path: Path | None = None) -> Engine:
    """The taxonomy file and the learned model shipped beside it (``X.json`` -> ``X.model.json`` and
    ``X.model.npz``, written by ``tipline classify train``); without a model there, the rules alone."""
    path = path if path is not None else configured_taxonomy_path()
    taxonomy = load_taxonomy(path)
    return Engine(taxonomy, model=model.load_model(path))


def _current_engine() -> Engine:
    engine = _engine
    if engine is None:
        with _lock:
            if _engine is None:
                path = configured_taxonomy_path()
                _put_in_force(_build_engine(path), path)
            engine = _engine
    return engine


def classify(text: str, category_hint: str | None = None) -> ClassificationResult:
    """Classify one report. ``category_hint`` is the category the reporter picked, if any: a weak prior."""
    return _current_engine().classify(text, category_hint=category_hint)


def current_taxonomy() -> Taxonomy:
    return _current_engine().taxonomy


def configure_taxonomy(path: Path | None) -> None:
    """At process start: put the settings' taxonomy file in force (a bad file stops the start)."""
    set_configured_path(path)
    reload_taxonomy()


def reload_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """Load the configured taxonomy file (and model data) again; ``path`` (e.g. ``Settings.taxonomy_path``)
    becomes the configured file when it loads.

    On error the old engine (and the old configured path) stay in force and the error is raised. The
    engine is per process: every process loads the file when it starts, and a reload reaches only the
    process that performs it.
    """
    source = Path(path) if path is not None else configured_taxonomy_path()
    engine = _build_engine(source)
    with _lock:
        if path is not None:
            set_configured_path(path)
        _put_in_force(engine, source)
    return engine.taxonomy


def _put_in_force(engine: Engine, source: Path) -> None:
    global _engine, _in_force
    _engine = engine
    _in_force = (source, _in_force[1] + 1)


def taxonomy_in_force() -> tuple[Path, int]:
    """Which file this process's engine came from, and which load it was: a worker process that prepares
    tips for this one reloads when the pair changes (``follow_taxonomy``)."""
    _current_engine()
    return _in_force


_followed: tuple[Path, int] | None = None


def follow_taxonomy(in_force: tuple[Path, int]) -> None:
    """In a worker process: put in force what the parent process has (after a reload there)."""
    global _followed
    if in_force != _followed:
        reload_taxonomy(in_force[0])
        _followed = in_force


def validate_taxonomy_file(path: Path | str) -> Taxonomy:
    """Parse and validate a taxonomy file (and the model beside it) without putting it in force (raises
    TaxonomyError)."""
    taxonomy = load_taxonomy(path)
    Engine(taxonomy, model=model.load_model(path))  # patterns and terms must also build
    return taxonomy


def current_model() -> model.TriageModel | None:
    """The learned model in force in this process (None: rules only)."""
    return _current_engine().model


def find_personal_data(text: str, accused: Sequence[str] = ()) -> list[PersonalDataSpan]:
    return pii.find_personal_data(text, accused)


def mask_personal_data(text: str, spans: list[PersonalDataSpan]) -> str:
    return pii.mask_personal_data(text, spans)


MaskedTexts = pii.MaskedTexts


def mask_texts(texts: dict[str, str | None], accused: pii.Accused = ()) -> MaskedTexts:
    """``accused``: the names in the clue's accused field, which stay readable (or their keyed digests,
    :func:`keyed_accused_names`, where the process cannot read the names)."""
    return pii.mask_texts(texts, accused)


ACCUSED_NAME_KEY_LABEL = "accused-name"  # runtime.lookup_key(...) for the accused names' digests


def accused_name_digests(names: Sequence[str], *, key: bytes) -> bytes | None:
    """What a clue keeps (``clues.accused_names``) so that later reporter texts keep the accused readable
    without the case key: keyed digests of the names of the structured accused field; ``None`` if none."""
    return pii.KeyedNames.of(names, key).dump()


def keyed_accused_names(stored: bytes | None, *, key: bytes) -> pii.KeyedNames:
    """The matcher for :func:`mask_texts` from a clue's ``accused_names`` (``None``: no names kept)."""
    return pii.KeyedNames.load(stored, key)


def load_name_segmenter() -> None:
    """At a worker's start: the name detector's dictionary and the near-duplicate hashing (datasketch,
    imported on first use), loaded before the first report needs them."""
    pii.load_name_segmenter()
    dedup.load()


def near_duplicate_signature(text: str, *, key: bytes) -> bytes:
    """``key``: ``runtime.lookup_key(NEAR_DUPLICATE_KEY_LABEL)``; other keys never match."""
    return dedup.near_duplicate_signature(text, key=key)


NEAR_DUPLICATE_KEY_LABEL = dedup.KEY_LABEL


def signature_similarity(a: bytes, b: bytes) -> float:
    return dedup.signature_similarity(a, b)


def validate_labels(labels: list[str]) -> list[str]:
    """Check a staff correction against the current taxonomy; return the labels in taxonomy order.

    An empty list is allowed (it means "back to triage").
    """
    known = current_taxonomy().category_ids
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise InvalidLabelsError(f"unknown categories: {', '.join(sorted(set(unknown)))}")
    if len(set(labels)) != len(labels):
        raise InvalidLabelsError("a category is given twice")
    if OTHER in labels and len(labels) > 1:
        raise InvalidLabelsError(f"{OTHER!r} stands alone")
    return [c for c in known if c in labels]


def labelled_example(*, example_id: str, text: str, labels: list[str]) -> dict[str, object]:
    """A corrected report as one line of labelled data, the format ``tipline classify --eval`` reads.

    The registry stores corrections (with the reason, in the audit log); exporting them through this
    function lets the evaluation command score the classifier on them. The text is personal data:
    exports belong in the encrypted store, never in the repository.
    """
    return {"id": example_id, "text": text, "labels": validate_labels(labels)}


registry_categories.use(current_taxonomy)  # the registry reads the taxonomy in force through this
