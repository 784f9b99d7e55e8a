"""The categories of the taxonomy in force, as the registry needs them: ids to validate routing and deadline
rules, short names for the ledger.

The taxonomy belongs to ``service.classification``, which sits above the registry (it corrects clues'
categories and links near-duplicate clues). So the registry does not import it: the classifier hands the
registry a reader of the taxonomy in force when it is loaded (``use``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_reader: Callable[[], Any] | None = None


def use(reader: Callable[[], Any]) -> None:
    """``reader()`` returns the taxonomy in force (``classification.results.Taxonomy``)."""
    global _reader
    _reader = reader


def _taxonomy() -> Any:
    if _reader is None:
        raise RuntimeError("no taxonomy reader: import service.classification.classifier first")
    return _reader()


def category_ids() -> frozenset[str]:
    return frozenset(_taxonomy().category_ids)


def category_names() -> dict[str, str]:
    return {category.id: category.name for category in _taxonomy().categories}
