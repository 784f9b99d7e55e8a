"""Rule engine: Aho-Corasick term matching, negation, weighted evidence and label decision.

A compiled ``Engine`` is immutable and built once per taxonomy; ``classify`` is a pure function of the
text, so it is safe to share between threads and to call from the intake pipeline's hot path.
"""

from __future__ import annotations

import math
import re
import re._parser as sre_parse
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import product
from operator import attrgetter
from typing import NamedTuple

import ahocorasick

from service.classification.model import TriageModel
from service.classification.normalize import SEPARATOR, NormalizedText, normalize, normalize_key
from service.classification.results import OTHER, ClassificationResult, Evidence, Taxonomy

HINT_WEIGHT = 0.5
_EXCEPTION, _CUE, _BREAKER = range(3)  # ranks of negation words
# An Evidence made without the named tuple's Python-level __new__: half the cost, and a report has dozens.
_evidence = partial(tuple.__new__, Evidence)
_EVIDENCE_ORDER = attrgetter("start", "end", "category")


@dataclass(frozen=True, slots=True)
class _Entry:
    category: str  # "" for an actor word
    term: str  # canonical term
    weight: float
    kind: str  # term | alias | counter | actor


class _Scored(NamedTuple):
    """What a scored key adds when found (built once per key, unpacked in the evidence loop)."""

    key: tuple[str, str]  # (category, term): a term counts once
    category: str
    term: str
    weight: float
    kind: str  # term | alias | counter


def _is_ascii_word(key: str) -> bool:
    return key.isascii() and any(c.isalpha() for c in key)


_MAX_LITERALS = 4000


def _node_literals(node) -> set[str] | None:
    """The finite set of strings a parsed regex node matches, or None when it is not a small literal set."""
    op, arg = node
    if op is sre_parse.LITERAL:
        return {chr(arg)}
    if op is sre_parse.IN:
        if all(item_op is sre_parse.LITERAL for item_op, _ in arg):
            return {chr(v) for _, v in arg}
        return None
    if op is sre_parse.BRANCH:
        out: set[str] = set()
        for branch in arg[1]:
            literals = _sequence_literals(list(branch))
            if literals is None:
                return None
            out |= literals
        return out
    if op is sre_parse.SUBPATTERN:
        _, add_flags, del_flags, sub = arg
        return None if add_flags or del_flags else _sequence_literals(list(sub))
    return None


def _sequence_literals(nodes) -> set[str] | None:
    out = {""}
    for node in nodes:
        literals = _node_literals(node)
        if literals is None or len(out) * len(literals) > _MAX_LITERALS:
            return None
        out = {a + b for a, b in product(out, literals)}
    return out


def _first_chars(nodes) -> set[str] | None:
    """The characters every match of a parsed sequence starts with, or None when that is not known."""
    if not len(nodes) or sre_parse.SubPattern(nodes.state, [nodes[0]]).getwidth()[0] == 0:
        return None
    op, arg = nodes[0]
    if op is sre_parse.LITERAL:
        return {chr(arg)}
    if op is sre_parse.IN:
        out: set[str] = set()
        for item_op, value in arg:
            if item_op is sre_parse.LITERAL:
                out.add(chr(value))
            elif item_op is sre_parse.RANGE and value[1] - value[0] < 256:
                out.update(map(chr, range(value[0], value[1] + 1)))
            else:
                return None
        return out
    if op is sre_parse.BRANCH:
        out = set()
        for branch in arg[1]:
            first = _first_chars(branch)
            if first is None:
                return None
            out |= first
        return out
    if op is sre_parse.SUBPATTERN:
        _, add_flags, del_flags, sub = arg
        return None if add_flags or del_flags else _first_chars(sub)
    if op is sre_parse.MAX_REPEAT or op is sre_parse.MIN_REPEAT:
        low, _, item = arg
        return _first_chars(item) if low >= 1 else None
    return None


def _sre_sees_start(nodes) -> bool:
    """Whether sre finds a literal or character-set prefix itself (the cases of its ``_compile_info``):
    a literal or a set first, or an alternation whose every branch opens with a literal."""
    while len(nodes) and nodes[0][0] is sre_parse.SUBPATTERN:
        nodes = nodes[0][1][3]
    if not len(nodes):
        return False
    op, arg = nodes[0]
    if op is sre_parse.LITERAL or op is sre_parse.IN:
        return True
    return op is sre_parse.BRANCH and all(len(b) and b[0][0] is sre_parse.LITERAL for b in arg[1])


def _compile_fast(regex: str) -> re.Pattern[str]:
    """Compile with a leading first-character lookahead when sre cannot see where a match may start.

    sre scans for a start position with a character-set check only when it sees a literal or a set at the
    front; an alternation of alternations (an actor word or 他, a duration or a number of months) hides
    it, and the search then tries the whole pattern at every position (measured: 5-8x slower on
    500-character reports). The lookahead restores the fast scan; where sre sees a start itself, it would
    only add work.
    """
    parsed = sre_parse.parse(regex)
    if parsed.state.flags & ~re.UNICODE:
        return re.compile(regex)  # global inline flags ("(?i)…") must stay at the very start
    first = None if _sre_sees_start(parsed) else _first_chars(parsed)
    if first:
        return re.compile(f"(?=[{re.escape(''.join(sorted(first)))}])" + regex)
    return re.compile(regex)


def _opening_literals(regex: str) -> set[str] | None:
    """The words every match of ``regex`` starts with (its first node, when that is a small set of
    non-empty literals), or None. A match can only start where one of them occurs."""
    parsed = sre_parse.parse(regex)
    if parsed.state.flags & ~re.UNICODE or not len(parsed):
        return None
    literals = _node_literals(parsed[0])
    return literals if literals and "" not in literals else None


def _literal_gates(regex: str) -> list[set[str]]:
    """Literal sets that must each occur in a text for ``regex`` to match (runs of literal nodes merged).

    Used as a cheap prefilter. A gate holding a single character is dropped when the pattern has a gate of
    words: single characters are common and would only add matching work. A pattern with no gate of words
    keeps its single-character gates made of uncommon characters (利/息, 万): otherwise it is searched in
    every report, and a search opening with a number or a long alternation scans every position.
    """
    gates: list[set[str]] = []
    run: set[str] | None = None
    for node in sre_parse.parse(regex):
        literals = _node_literals(node)
        if literals is not None and run is not None and len(run) * len(literals) <= _MAX_LITERALS:
            run = {a + b for a, b in product(run, literals)}
            continue
        if run is not None:
            gates.append(run)
        run = literals
    if run is not None:
        gates.append(run)
    words = [g for g in gates if g and min(map(len, g)) >= 2]
    return words or [g for g in gates if g and not any(len(w) == 1 and w in _COMMON_CHARACTERS for w in g)]


# The most frequent characters of written Chinese, most frequent first: a gate holding one of them alone
# passes nearly every text.
_FREQUENT_CHARACTERS = (
    "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会家可下而过天去能对小多"
    "然于心学么之都好看起发当没成只如事把还用第样道想作种开美总从无情己面最女但现前些所同日手又行意动方期它头"
    "经长儿回位分爱老因很给名法间知世什两次使身者被高已亲其进此话常与活正感"
)
_COMMON_CHARACTERS = frozenset(_FREQUENT_CHARACTERS)


# The order in which the automaton's root looks characters up (see Engine.__init__), and the ending of a
# placeholder key: a space, which normalisation always drops.
_SCAN_ORDER = SEPARATOR + _FREQUENT_CHARACTERS
_UNSEEN = " "


class Engine:
    def __init__(self, taxonomy: Taxonomy, *, model: TriageModel | None = None) -> None:
        self.taxonomy = taxonomy
        # The learned model shipped beside the taxonomy; None (no artifact there) keeps the engine rule-only.
        self.model = model
        if model is not None:
            model.prepare()
            known = set(taxonomy.category_ids)
            self._model_index = {c: i for i, c in enumerate(model.classes) if c in known}
            self._rules_only = [c for c in taxonomy.category_ids if c not in self._model_index]
            self._unknown_classes = [c for c in model.classes if c not in known]
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

        # Each pattern is gated by literal words it requires (a bit per gate): the pattern is searched only
        # when every one of its gates was seen.
        gate_masks: dict[str, int] = {}
        pattern_gates: list[int] = []
        gate_count = 0
        # Patterns that open with a set of words are tried only where one of those words starts (the scan
        # finds them): the leftmost such start that matches is what a search would find, without the
        # search trying the opening alternation at every position (half the patterns' cost).
        opening_ids: dict[frozenset[str], int] = {}
        pattern_openings: list[int] = []  # -1: searched
        opening_words: dict[str, list[int]] = {}
        for pattern in (p for category in taxonomy.categories for p in category.patterns):
            opening = _opening_literals(pattern.regex)
            if opening is None:
                pattern_openings.append(-1)
            else:
                known = len(opening_ids)
                opening_id = opening_ids.setdefault(frozenset(opening), known)
                pattern_openings.append(opening_id)
                if opening_id == known:
                    for word in opening:
                        opening_words.setdefault(word, []).append(opening_id)
            required = 0
            for literals in _literal_gates(pattern.regex):
                for literal in literals:
                    gate_masks[literal] = gate_masks.get(literal, 0) | 1 << gate_count
                required |= 1 << gate_count
                gate_count += 1
            pattern_gates.append(required)
        # Negation words by rank: where several start at one position, the lowest rank wins, then the
        # longest (exceptions first, so that "没想到" is consumed before "没" can match inside it). Clause
        # punctuation (SEPARATOR) breaks every scope too, but is not in the automaton: no negation word holds
        # it (the taxonomy refuses one that does), so no word read can overlap it, and ``_negated`` looks for
        # it in the text (a third of a report's matches were separators).
        neg = taxonomy.negation
        negation_ranks: dict[str, int] = {}
        if neg.window:
            for rank, words in (
                (_EXCEPTION, neg.exceptions),
                (_CUE, neg.cues),
                (_BREAKER, neg.scope_breakers),
            ):
                for word in words:
                    if key := normalize_key(word):
                        negation_ranks.setdefault(key, rank)
        self._neg_window = neg.window
        # One automaton for terms, actors, aliases, gate literals, opening words and negation words: scanning
        # a report costs more than the matches it yields (pyahocorasick walks each node's transitions), so one
        # scan.
        self._automaton = ahocorasick.Automaton()
        # pyahocorasick looks a character up among a node's children one by one, in the order they were
        # added, and the root has hundreds: a character that opens no key costs a walk through all of them.
        # The characters most frequent in reports (clause ends, then the commonest characters) are added
        # first, those that open no key as a placeholder node that never matches (its key ends with a space,
        # which normalised text never holds).
        by_first: dict[str, list[str]] = {}
        for key in entries.keys() | gate_masks.keys() | negation_ranks.keys() | opening_words.keys():
            by_first.setdefault(key[0], []).append(key)
        placeholders = {c + _UNSEEN for c in _SCAN_ORDER if c not in by_first}
        keys = [key for c in _SCAN_ORDER for key in by_first.pop(c, [c + _UNSEEN])]
        keys += (key for group in by_first.values() for key in group)
        for key in keys:
            if key in placeholders:
                self._automaton.add_word(key, None)
                continue
            items = entries.get(key, [])
            is_actor = any(e.kind == "actor" for e in items)
            scored = tuple(
                _Scored((e.category, e.term), e.category, e.term, e.weight, e.kind)
                for e in items
                if e.kind != "actor"
            )
            # Gate literals and negation words count wherever they occur; only terms keep to ASCII word
            # boundaries.
            ascii_word = bool(items) and _is_ascii_word(key)
            value = (
                len(key),
                gate_masks.get(key, 0),
                negation_ranks.get(key, -1),
                tuple(opening_words.get(key, ())),
                scored or None,
                ascii_word,
                is_actor,
            )
            self._automaton.add_word(key, value)
        self._has_words = bool(entries or gate_masks or negation_ranks or opening_words)
        self._opening_count = len(opening_ids)
        if self._has_words:
            self._automaton.make_automaton()
        patterns = [
            (category.id, p.id, _compile_fast(p.regex), p.weight, p.negatable)
            for category in taxonomy.categories
            for p in category.patterns
        ]
        self._gated_patterns = list(zip(patterns, pattern_gates, pattern_openings, strict=True))
        self._requires_actor = {c.id: c.requires_actor for c in taxonomy.categories}
        self._no_scores = dict.fromkeys(taxonomy.category_ids, 0.0)

    # -- matching -------------------------------------------------------------------------------------

    def _hits(
        self, text: str
    ) -> tuple[
        bool, list[tuple[int, int, tuple[_Scored, ...]]], int, list[tuple[int, int, int]], list[list[int]]
    ]:
        """Whether an actor word occurs, (start, -end, entries) for every scored key found (so that a plain
        sort orders them by start, longest first), the patterns' gates seen (a bit each), (start, rank,
        -length) for every negation word found, and per set of opening words the starts of its words."""
        actor_found = False
        hits: list[tuple[int, int, tuple[_Scored, ...]]] = []
        gates = 0
        negation_words: list[tuple[int, int, int]] = []
        openings: list[list[int]] = [[] for _ in range(self._opening_count)]
        if not self._has_words:
            return actor_found, hits, gates, negation_words, openings
        for end_index, value in self._automaton.iter(text):
            length, gate_mask, rank, opens, entries, ascii_word, is_actor = value
            gates |= gate_mask
            start = end_index - length + 1
            if rank >= 0:
                negation_words.append((start, rank, -length))
            for opening_id in opens:
                openings[opening_id].append(start)
            if entries is None and not is_actor:
                continue
            end = end_index + 1
            if ascii_word and (
                (start > 0 and text[start - 1].isascii() and text[start - 1].isalnum())
                or (end < len(text) and text[end].isascii() and text[end].isalnum())
            ):
                continue
            if is_actor:
                actor_found = True
            if entries is not None:
                hits.append((start, -end, entries))
        return actor_found, hits, gates, negation_words, openings

    @staticmethod
    def _negation_marks(words: list[tuple[int, int, int]]) -> tuple[list[int], list[int], list[int]]:
        """Start and end offsets of negation cues, and positions of scope breakers (但是…; clause ends are
        looked for in the text by ``_negated``).

        ``words`` are all negation words found, overlapping ones included; they are read left to right
        without overlaps, the lowest rank and then the longest word winning at each position (a regex
        alternation of exceptions, cues and breakers, longest first, scanning the text would do the same).
        """
        cue_starts: list[int] = []
        cue_ends: list[int] = []
        breakers: list[int] = []
        reach = 0
        words.sort()  # (start, rank, -length): the winner first at each start
        for start, rank, negative_length in words:
            if start < reach:
                continue
            reach = start - negative_length
            if rank == _CUE:
                cue_starts.append(start)
                cue_ends.append(reach)
            elif rank == _BREAKER:
                breakers.append(reach)
        return cue_starts, cue_ends, breakers

    def _negated(self, text: str, marks: tuple[list[int], list[int], list[int]], start: int) -> bool:
        """A cue that starts before ``start`` and ends at most ``window`` characters before it (or runs
        into it: "没有人" negates "有人"), with no breaker and no clause end in between."""
        cue_starts, cue_ends, breakers = marks
        i = bisect_left(cue_starts, start) - 1
        if i < 0 or cue_ends[i] < start - self._neg_window:
            return False
        cue_end = min(cue_ends[i], start)
        if text.find(SEPARATOR, cue_end, start) >= 0:
            return False
        j = bisect_left(breakers, cue_end + 1)
        return not (j < len(breakers) and breakers[j] <= start)

    # -- classification -------------------------------------------------------------------------------

    def rule_scores(self, text: str, category_hint: str | None = None) -> tuple[dict[str, float], bool]:
        """The rules' raw score per category and whether an actor word occurs (training fits the model's
        stacking weights on these)."""
        raw, _, actor_found, _ = self._rules(normalize(text), category_hint)
        return raw, actor_found

    def classify(self, text: str, category_hint: str | None = None) -> ClassificationResult:
        norm: NormalizedText = normalize(text)
        raw, evidence, actor_found, offsets = self._rules(norm, category_hint)
        thresholds = self.taxonomy.thresholds
        if self.model is None:
            labels = self._decide(raw)
            scores = {c: round(v / (v + thresholds.label), 3) if v > 0 else 0.0 for c, v in raw.items()}
        else:
            labels, scores = self._combine(norm.text, offsets, raw, actor_found, evidence)
        evidence.sort(key=_EVIDENCE_ORDER)
        return ClassificationResult(
            labels=labels,
            needs_triage=not labels,
            scores=scores,
            evidence=evidence,
            taxonomy_version=self.taxonomy.version,
            model_version=self.model.version if self.model is not None else None,
        )

    def _rules(
        self, norm: NormalizedText, category_hint: str | None
    ) -> tuple[dict[str, float], list[Evidence], bool, Sequence[int]]:
        """Raw scores, evidence, whether an actor word occurs, and ``norm.offsets`` (spans map through it)."""
        taxonomy = self.taxonomy
        ntext = norm.text
        actor_found, hits, gates_seen, negation_words, openings = self._hits(ntext)
        marks = self._negation_marks(negation_words)
        offsets = norm.offsets

        raw: dict[str, float] = self._no_scores.copy()
        counted: set[tuple[str, str]] = set()
        evidence: list[Evidence] = []
        # Longest match wins: a key strictly inside another one (立案 inside 没有立案) is dropped.
        # Keys are unique per span, so after sorting by (start, -end) a hit is inside an earlier one
        # exactly when an earlier hit reaches at least as far.
        hits.sort()  # (start, -end): never a tie, so the entries are never compared
        reach = -1
        for hit_start, negative_end, entries in hits:
            hit_end = -negative_end
            if reach >= hit_end:
                continue
            reach = hit_end
            negated: bool | None = None
            start, end = offsets[hit_start], offsets[hit_end - 1] + 1
            for key, category, term, weight, kind in entries:
                if key in counted:
                    continue  # a term counts once; its first occurrence is the evidence
                if kind == "counter":
                    counted.add(key)
                    evidence.append(_evidence((term, category, start, end, weight, "counter")))
                    raw[category] += weight
                    continue
                if negated is None:
                    negated = self._negated(ntext, marks, hit_start)
                if negated:
                    evidence.append(_evidence((term, category, start, end, 0.0, "negated")))
                    continue
                counted.add(key)
                raw[category] += weight
                evidence.append(_evidence((term, category, start, end, weight, kind)))

        for (category_id, pattern_id, regex, weight, negatable), gates, opening in self._gated_patterns:
            if gates & gates_seen != gates:
                continue
            if opening < 0:
                match = regex.search(ntext)
            else:
                match = None
                starts = openings[opening]
                starts.sort()  # found in order of their ends
                for position in starts:
                    if match := regex.match(ntext, position):
                        break
            if match is None or match.end() == match.start():
                continue
            # The action is the pattern's last group: "民警没有打人" negates at 打, not at 民警.
            action_start = match.start(match.lastindex) if match.lastindex else match.start()
            if negatable and self._negated(ntext, marks, action_start):
                continue
            raw[category_id] += weight
            start, end = offsets[match.start()], offsets[match.end() - 1] + 1
            evidence.append(_evidence((pattern_id, category_id, start, end, weight, "pattern")))

        if category_hint and category_hint in raw:
            raw[category_hint] += HINT_WEIGHT
            evidence.append(Evidence(f"hint:{category_hint}", category_hint, 0, 0, HINT_WEIGHT, "hint"))

        if not actor_found:
            factor = taxonomy.thresholds.no_actor_factor
            for category_id, needs_actor in self._requires_actor.items():
                if needs_actor and raw[category_id] > 0:
                    raw[category_id] *= factor
        return raw, evidence, actor_found, offsets

    def _combine(
        self,
        text: str,
        offsets: Sequence[int],
        raw: dict[str, float],
        actor_found: bool,
        evidence: list[Evidence],
    ) -> tuple[list[str], dict[str, float]]:
        """Rules and model together: calibrated probabilities, a label when confident, triage otherwise.
        ``text`` is the normalised text, ``offsets`` its map to the original."""
        model = self.model
        assert model is not None
        features = model.features(text)
        weights = model.weights(features)
        logits = model.logits(features, weights).tolist()
        other_raw = raw.get(OTHER, 0.0)
        misconduct_best = max((v for c, v in raw.items() if c != OTHER), default=0.0)
        classes = model.classes
        rules = [raw.get(c, 0.0) for c in classes]
        rival = [misconduct_best if c == OTHER else other_raw for c in classes]
        combined = model.combine(logits, rules, rival, 1.0 if actor_found else 0.0)
        probabilities = dict(zip(classes, combined, strict=True))
        for c in self._unknown_classes:  # a model trained for a category this taxonomy no longer has
            del probabilities[c]
        # A deployment's own category that the model does not know: the rules' score, 0.5 at the threshold.
        for c in self._rules_only:
            v = raw[c]
            probabilities[c] = v / (v + self.taxonomy.thresholds.label) if v > 0 else 0.0
        best = max(probabilities, key=probabilities.__getitem__)
        labels: list[str] = []
        if probabilities[best] >= model.triage_threshold:
            if best == OTHER:
                labels = [OTHER]
            else:
                floor = model.secondary_threshold
                more = [c for c, p in probabilities.items() if p >= floor and c != best and c != OTHER]
                labels = [best, *sorted(more, key=probabilities.__getitem__, reverse=True)]
        # Evidence: what the model saw for the labels given (or, for a report sent to triage, its best guess).
        shown = [(c, self._model_index[c]) for c in labels or [best] if c in self._model_index]
        if shown:
            ranked = model.strongest(features, weights, [i for _, i in shown])
            for (category, i), strongest in zip(shown, ranked, strict=True):
                probability = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logits[i]))))
                evidence.append(Evidence("model", category, 0, 0, round(probability, 3), "model"))
                for ngram, contribution in strongest:
                    first = text.find(ngram)  # its first occurrence, for the span
                    start, end = offsets[first], offsets[first + len(ngram) - 1] + 1
                    evidence.append(_evidence((ngram, category, start, end, round(contribution, 3), "model")))
        scores = {c: round(probabilities[c], 3) for c in raw}
        return labels, scores

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
