"""Text normalisation that keeps a map back to the original offsets.

Every step is length-preserving per character or drops characters, so ``offsets[i]`` is the index in the
original text of normalised character ``i`` and evidence spans can always be reported on the original text.
Variant spellings that change length (homophones, pinyin initials, abbreviations) are not rewritten here:
they are matched as aliases by the matcher, which reports the alias span and the canonical term.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, pairwise

import opencc

SEPARATOR = "|"
# Sentence and clause punctuation ends a negation scope and stops regex patterns ([^|]).
_SEPARATORS = set("，。！？；：,!?;:\n\r…｡､")
# Decoration and spacing that citizens (and evaders) put inside words: dropped entirely.
_DROPPED = set(
    " \t\u3000\u00a0\u200b\u200c\u200d\ufeff*·•-_~'\"`/\\、“”‘’「」『』《》〈〉()（）[]【】{}<>#&^=+"
    "＊～／＼＃＆＾＝＋＂＇｀＜＞［］｛｝｜〔〕"
)

_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_HALFWIDTH[0x3000] = 0x20
_HALFWIDTH.update({cp: cp + 32 for cp in range(ord("A"), ord("Z") + 1)})
_FOLD_TABLE = str.maketrans(_HALFWIDTH)


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=8192)
def _t2s_char(ch: str) -> str:
    converted = _converter().convert(ch)
    return converted if len(converted) == 1 else ch


def to_simplified(text: str) -> str:
    """Traditional to simplified, guaranteed to keep the length (phrase conversion when it does)."""
    converted = _converter().convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(_t2s_char(ch) for ch in text)


# Full-width punctuation need not be folded for matching: it is listed in _SEPARATORS/_DROPPED as is.
_NEEDS_FOLD = re.compile("[A-Z\u3000\uff10-\uff19\uff20-\uff3a\uff41-\uff5a\uff0e\uff3f\uff0d]+")


def _fold_run(match: re.Match[str]) -> str:
    # Upper-case folding goes through the half-width table first: "Ａ" -> "A" -> "a" needs two passes.
    return match.group(0).translate(_FOLD_TABLE).translate(_FOLD_TABLE)


def fold(text: str) -> str:
    """Simplified, half-width, lower-case ASCII; same length as ``text``."""
    return to_simplified(text).translate(_FOLD_TABLE).translate(_FOLD_TABLE)


def _fold_for_matching(text: str) -> str:
    """``fold`` restricted to letters, digits and spaces, which is all that matching needs.

    str.translate walks every character through a dict; only the few runs that need it go through it.
    """
    return _NEEDS_FOLD.sub(_fold_run, to_simplified(text))


_DROP_RE = re.compile("[" + re.escape("".join(sorted(_DROPPED))) + "]")
_SEPARATOR_RE = re.compile("[" + re.escape("".join(sorted(_SEPARATORS))) + "]")


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """Normalised text plus what is needed to map its offsets back to the original.

    ``_shift_at[k]`` is the normalised index at which the k-th dropped character used to be; an index
    ``i`` maps back to ``i + bisect_right(_shift_at, i)``. Computing spans lazily keeps the hot path in C.
    """

    text: str
    _shift_at: tuple[int, ...]

    def original_index(self, index: int) -> int:
        return index + bisect_right(self._shift_at, index)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        return self.original_index(start), self.original_index(end - 1) + 1

    @property
    def offsets(self) -> Sequence[int]:
        """``original_index`` of every normalised index, built in one pass (the engine maps dozens of spans
        per report through it: an indexing each instead of two bisects)."""
        if not self._shift_at:
            return range(len(self.text))
        # Indices before the k-th drop shift by k; repeated drop positions give empty runs.
        bounds = (0, *self._shift_at, len(self.text))
        return tuple(chain.from_iterable(range(a + k, b + k) for k, (a, b) in enumerate(pairwise(bounds))))


def normalize(text: str) -> NormalizedText:
    """Fold, drop decoration and spacing, turn clause punctuation into ``SEPARATOR``. Never changes order."""
    folded = _fold_for_matching(text)
    dropped = [m.start() for m in _DROP_RE.finditer(folded)]
    kept = _DROP_RE.sub("", folded) if dropped else folded
    shift_at = tuple(position - k for k, position in enumerate(dropped))
    return NormalizedText(_SEPARATOR_RE.sub(SEPARATOR, kept), shift_at)


def normalize_key(term: str) -> str:
    """Normalise a taxonomy term the same way as report text, so either script matches."""
    return normalize(term).text.strip(SEPARATOR)
