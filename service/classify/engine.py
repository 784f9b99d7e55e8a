"""Rule engine: Aho-Corasick term matching, negation, weighted evidence and label decision.

A compiled ``Engine`` is immutable and built once per taxonomy; ``classify`` is a pure function of the
text, so it is safe to share between threads and to call from the intake pipeline's hot path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

from .models import OTHER, ClassificationResult, Evidence, Taxonomy
from .normalize import SEPARATOR, NormalizedText, normalize, normalize_key

HINT_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class _Entry:
    category: str  # "" for an actor word
    term: str  # canonical term
    weight: float
    kind: str  # term | alias | counter | actor


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int  # normalised offsets, end exclusive
    end: int
    entry: _Entry


def _is_ascii_word(key: str) -> bool:
    return key.isascii() and any(c.isalpha() for c in key)


class Engine:
    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        entries: dict[str, list[_Entry]] = {}

        def add(key: str, entry: _Entry) -> None:
            key = normalize_key(key)
            if key:
                entries.setdefault(key, []).append(entry)

        canonical: dict[str, list[_Entry]] = {}
        for category in taxonomy.categories:
            for term, weight in category.terms.items():
                entry = _Entry(category.id, term, weight, "term")
                add(term, entry)
                canonical.setdefault(normalize_key(term), []).append(entry)
            for term, weight in category.counter_terms.items():
                add(term, _Entry(category.id, term, -abs(weight), "counter"))
        for actor, weight in taxonomy.actors.items():
            if weight > 0:
                entry = _Entry("", actor, weight, "actor")
                add(actor, entry)
                canonical.setdefault(normalize_key(actor), []).append(entry)
        for variant, target in taxonomy.aliases.items():
            for entry in canonical.get(normalize_key(target), []):
                kind = "actor" if entry.kind == "actor" else "alias"
                add(variant, _Entry(entry.category, entry.term, entry.weight, kind))

        self._automaton = ahocorasick.Automaton()
        for key, items in entries.items():
            self._automaton.add_word(key, (len(key), _is_ascii_word(key), tuple(items)))
        if entries:
            self._automaton.make_automaton()
        self._has_words = bool(entries)
        self._patterns = [
            (category.id, p.id, re.compile(p.regex), p.weight, p.negatable)
            for category in taxonomy.categories
            for p in category.patterns
        ]
        self._requires_actor = {c.id: c.requires_actor for c in taxonomy.categories}
        neg = taxonomy.negation
        self._neg_cues = tuple(sorted({normalize_key(c) for c in neg.cues if normalize_key(c)}, key=len))
        self._neg_breakers = tuple(normalize_key(b) for b in neg.scope_breakers if normalize_key(b))
        self._neg_exceptions = tuple(normalize_key(e) for e in neg.exceptions if normalize_key(e))
        self._neg_window = neg.window

    # -- matching -------------------------------------------------------------------------------------

    def _hits(self, text: str) -> list[_Hit]:
        if not self._has_words:
            return []
        hits: list[_Hit] = []
        for end_index, (length, ascii_word, items) in self._automaton.iter(text):
            start = end_index - length + 1
            end = end_index + 1
            if ascii_word and (
                (start > 0 and text[start - 1].isascii() and text[start - 1].isalnum())
                or (end < len(text) and text[end].isascii() and text[end].isalnum())
            ):
                continue
            for entry in items:
                hits.append(_Hit(start, end, entry))
        return hits

    def _negated(self, text: str, start: int) -> bool:
        if not self._neg_window:
            return False
        window_start = max(0, start - self._neg_window)
        window = text[window_start:start]
        cut = window.rfind(SEPARATOR)
        if cut >= 0:
            window = window[cut + 1 :]
        for breaker in self._neg_breakers:
            cut = window.rfind(breaker)
            if cut >= 0:
                window = window[cut + len(breaker) :]
        if not window:
            return False
        for exception in self._neg_exceptions:
            if exception in window:
                window = window.replace(exception, SEPARATOR * len(exception))
        return any(cue in window for cue in self._neg_cues)

    # -- classification -------------------------------------------------------------------------------

    def classify(self, text: str, category_hint: str | None = None) -> ClassificationResult:
        taxonomy = self.taxonomy
        norm: NormalizedText = normalize(text)
        ntext = norm.text
        raw_hits = self._hits(ntext)

        actor_found = any(h.entry.kind == "actor" for h in raw_hits)
        category_hits = [h for h in raw_hits if h.entry.kind != "actor"]
        # Longest match wins: a hit strictly inside another one (立案 inside 没有立案) is dropped.
        spans = {(h.start, h.end) for h in category_hits}
        kept = [
            h
            for h in category_hits
            if not any(s <= h.start and h.end <= e and (e - s) > (h.end - h.start) for s, e in spans)
        ]

        raw: dict[str, float] = {c: 0.0 for c in taxonomy.category_ids}
        counted: set[tuple[str, str]] = set()
        evidence: list[Evidence] = []
        for hit in sorted(kept, key=lambda h: (h.start, h.end)):
            entry = hit.entry
            start, end = norm.original_span(hit.start, hit.end)
            if entry.kind == "counter":
                evidence.append(Evidence(entry.term, entry.category, start, end, entry.weight, "counter"))
                raw[entry.category] += entry.weight
                continue
            if self._negated(ntext, hit.start):
                evidence.append(Evidence(entry.term, entry.category, start, end, 0.0, "negated"))
                continue
            key = (entry.category, entry.term)
            if key in counted:
                continue
            counted.add(key)
            raw[entry.category] += entry.weight
            evidence.append(Evidence(entry.term, entry.category, start, end, entry.weight, entry.kind))  # type: ignore[arg-type]

        for category_id, pattern_id, regex, weight, negatable in self._patterns:
            match = regex.search(ntext)
            if match is None or match.end() == match.start():
                continue
            # The action is the pattern's last group: "民警没有打人" negates at 打, not at 民警.
            action_start = match.start(match.lastindex) if match.lastindex else match.start()
            if negatable and self._negated(ntext, action_start):
                continue
            start, end = norm.original_span(match.start(), match.end())
            raw[category_id] += weight
            evidence.append(Evidence(pattern_id, category_id, start, end, weight, "pattern"))

        if category_hint and category_hint in raw:
            raw[category_hint] += HINT_WEIGHT
            evidence.append(Evidence(f"hint:{category_hint}", category_hint, 0, 0, HINT_WEIGHT, "hint"))

        thresholds = taxonomy.thresholds
        if not actor_found:
            for category_id, needs_actor in self._requires_actor.items():
                if needs_actor and raw[category_id] > 0:
                    raw[category_id] *= thresholds.no_actor_factor

        labels = self._decide(raw)
        scores = {c: round(v / (v + thresholds.label), 3) if v > 0 else 0.0 for c, v in raw.items()}
        evidence.sort(key=lambda e: (e.start, e.end, e.category))
        return ClassificationResult(
            labels=labels,
            needs_triage=not labels,
            scores=scores,
            evidence=evidence,
            taxonomy_version=taxonomy.version,
        )

    def _decide(self, raw: dict[str, float]) -> list[str]:
        t = self.taxonomy.thresholds
        misconduct = {c: v for c, v in raw.items() if c != OTHER}
        top = max(misconduct.values(), default=0.0)
        other = raw.get(OTHER, 0.0)
        if other >= t.other and other >= 1.5 * top:
            return [OTHER]
        if top < t.label:
            return []
        floor = max(t.label, t.secondary_ratio * top)
        chosen = [c for c, v in misconduct.items() if v >= floor]
        return sorted(chosen, key=lambda c: -misconduct[c])
