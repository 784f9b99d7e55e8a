"""Loading and validating the taxonomy data file.

The default file ships inside this package; a deployment points ``TIPLINE_TAXONOMY_PATH`` at its own file
to rename, add or re-weight categories without code changes. Which file is in force is decided once, by the
composition root from the settings (``set_configured_path``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from service.classification.normalize import SEPARATOR, normalize_key
from service.classification.results import OTHER, Category, Negation, Pattern, Taxonomy, Thresholds

DEFAULT_TAXONOMY_PATH = Path(__file__).with_name("taxonomy.json")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_CONCEPT_REF = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")


class TaxonomyError(ValueError):
    """The taxonomy file is missing, not JSON, or does not validate. The message says where and why."""


_configured_path: Path | None = None


def set_configured_path(path: Path | str | None) -> None:
    """What ``Settings.taxonomy_path`` says for this process (the app's lifespan, the job process and the
    CLI call this); ``None``: the packaged default."""
    global _configured_path
    _configured_path = Path(path) if path is not None else None


def configured_taxonomy_path() -> Path:
    """The file in force: the configured one, else the packaged default."""
    return _configured_path or DEFAULT_TAXONOMY_PATH


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    path = Path(path) if path is not None else configured_taxonomy_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TaxonomyError(f"taxonomy file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise TaxonomyError(f"taxonomy file {path} is not valid JSON: line {exc.lineno}: {exc.msg}") from exc
    return parse_taxonomy(raw, source=str(path))


def parse_taxonomy(raw: Any, *, source: str = "<data>") -> Taxonomy:
    errors: list[str] = []

    def fail(where: str, why: str) -> None:
        errors.append(f"{where}: {why}")

    if not isinstance(raw, dict):
        raise TaxonomyError(f"{source}: top level must be an object")
    version = raw.get("version")
    if not isinstance(version, str) or not version.strip():
        fail("version", "required non-empty string")
    thresholds = _thresholds(raw.get("thresholds", {}), fail)
    negation = _negation(raw.get("negation", {}), fail)
    actors = _weights(raw.get("actors", {}), "actors", fail)
    aliases = raw.get("aliases", {})
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in aliases.items()
    ):
        fail("aliases", "must map non-empty strings to non-empty strings")
        aliases = {}

    concepts = raw.get("concepts", {})
    if not isinstance(concepts, dict) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", k) and isinstance(v, str) and v
        for k, v in concepts.items()
    ):
        fail("concepts", "must map UPPER_CASE names to non-empty regex alternations")
        concepts = {}

    categories: list[Category] = []
    seen: set[str] = set()
    raw_categories = raw.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        fail("categories", "required non-empty list")
        raw_categories = []
    for index, item in enumerate(raw_categories):
        where = f"categories[{index}]"
        if not isinstance(item, dict):
            fail(where, "must be an object")
            continue
        cid = item.get("id")
        if not isinstance(cid, str) or not _ID_RE.match(cid):
            fail(f"{where}.id", f"must match {_ID_RE.pattern}, got {cid!r}")
            continue
        where = f"category {cid!r}"
        if cid in seen:
            fail(where, "duplicate id")
        seen.add(cid)
        for key in ("name", "tier"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                fail(f"{where}.{key}", "required non-empty string")
        patterns: list[Pattern] = []
        for pindex, p in enumerate(item.get("patterns", [])):
            pwhere = f"{where}.patterns[{pindex}]"
            if (
                not isinstance(p, dict)
                or not isinstance(p.get("id"), str)
                or not isinstance(p.get("regex"), str)
            ):
                fail(pwhere, "needs string 'id' and 'regex'")
                continue
            unknown = sorted(set(_CONCEPT_REF.findall(p["regex"])) - set(concepts))
            if unknown:
                fail(pwhere, f"unknown concept(s) {', '.join(unknown)}")
                continue
            regex = _CONCEPT_REF.sub(lambda m: "(?:" + concepts[m.group(1)] + ")", p["regex"])
            try:
                re.compile(regex)
            except re.error as exc:
                fail(pwhere, f"invalid regex: {exc}")
                continue
            weight = p.get("weight", 1.0)
            if not _is_weight(weight):
                fail(pwhere, "weight must be a number between -10 and 10")
                continue
            patterns.append(
                Pattern(
                    id=p["id"], regex=regex, weight=float(weight), negatable=bool(p.get("negatable", True))
                )
            )
        terms = _weights(item.get("terms", {}), f"{where}.terms", fail)
        if not terms and not patterns and cid != OTHER:
            fail(where, "has neither terms nor patterns")
        categories.append(
            Category(
                id=cid,
                tier=str(item.get("tier", "")),
                name=str(item.get("name", "")),
                description=str(item.get("description", "")),
                requires_actor=bool(item.get("requires_actor", False)),
                terms=terms,
                patterns=tuple(patterns),
                counter_terms=_weights(item.get("counter_terms", {}), f"{where}.counter_terms", fail),
            )
        )
    if categories and OTHER not in seen:
        fail("categories", f"must include the {OTHER!r} category")
    if errors:
        raise TaxonomyError(f"invalid taxonomy {source}:\n  " + "\n  ".join(errors))
    return Taxonomy(
        version=str(version),
        categories=tuple(categories),
        thresholds=thresholds,
        negation=negation,
        actors=actors,
        aliases=dict(aliases),
        source=source,
    )


def _is_weight(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and -10 <= value <= 10


def _weights(raw: Any, where: str, fail) -> dict[str, float]:
    if not isinstance(raw, dict):
        fail(where, "must map terms to numeric weights")
        return {}
    out: dict[str, float] = {}
    for term, weight in raw.items():
        if not isinstance(term, str) or not term.strip():
            fail(where, f"empty term {term!r}")
        elif not _is_weight(weight):
            fail(where, f"term {term!r}: weight must be a number between -10 and 10, got {weight!r}")
        else:
            out[term] = float(weight)
    return out


def _thresholds(raw: Any, fail) -> Thresholds:
    if not isinstance(raw, dict):
        fail("thresholds", "must be an object")
        return Thresholds()
    defaults = Thresholds()
    values = {}
    for key in ("label", "secondary_ratio", "other", "no_actor_factor"):
        value = raw.get(key, getattr(defaults, key))
        if not _is_weight(value) or value < 0:
            fail(f"thresholds.{key}", "must be a non-negative number")
            value = getattr(defaults, key)
        values[key] = float(value)
    return Thresholds(**values)


def _negation(raw: Any, fail) -> Negation:
    if not isinstance(raw, dict):
        fail("negation", "must be an object")
        return Negation()
    cues = raw.get("cues", [])
    breakers = raw.get("scope_breakers", [])
    exceptions = raw.get("exceptions", [])
    if not isinstance(exceptions, list) or not all(isinstance(c, str) and c for c in exceptions):
        fail("negation.exceptions", "must be a list of non-empty strings")
        exceptions = []
    window = raw.get("window", 6)
    if not isinstance(cues, list) or not all(isinstance(c, str) and c for c in cues):
        fail("negation.cues", "must be a list of non-empty strings")
        cues = []
    if not isinstance(breakers, list) or not all(isinstance(c, str) and c for c in breakers):
        fail("negation.scope_breakers", "must be a list of non-empty strings")
        breakers = []
    if not isinstance(window, int) or isinstance(window, bool) or not 0 <= window <= 40:
        fail("negation.window", "must be an integer between 0 and 40")
        window = 6
    for field, words in (("exceptions", exceptions), ("cues", cues), ("scope_breakers", breakers)):
        # Clause punctuation ends every scope, so the engine reads it apart from the negation words.
        if any(SEPARATOR in normalize_key(word) for word in words):
            fail(f"negation.{field}", "must not hold clause punctuation (，。；…) inside a word")
    return Negation(
        cues=tuple(cues), window=window, scope_breakers=tuple(breakers), exceptions=tuple(exceptions)
    )
