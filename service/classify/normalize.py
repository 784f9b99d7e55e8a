"""Text normalisation that keeps a map back to the original offsets.

Every step is length-preserving per character or drops characters, so ``offsets[i]`` is the index in the
original text of normalised character ``i`` and evidence spans can always be reported on the original text.
Variant spellings that change length (homophones, pinyin initials, abbreviations) are not rewritten here:
they are matched as aliases by the matcher, which reports the alias span and the canonical term.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import opencc

SEPARATOR = "|"
# Sentence and clause punctuation ends a negation scope and stops regex patterns ([^|]).
_SEPARATORS = set("，。！？；：,!?;:\n\r…")
# Decoration and spacing that citizens (and evaders) put inside words: dropped entirely.
_DROPPED = set(" \t\u3000\u00a0\u200b\u200c\u200d\ufeff*·•-_~'\"`/\\、“”‘’「」『』《》〈〉()（）[]【】{}<>#@&^=+")
_DROPPED.discard("@")  # keep '@' so e-mail-like spam still reads as such

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


def fold(text: str) -> str:
    """Simplified, half-width, lower-case ASCII; same length as ``text``."""
    # Upper-case folding goes through the half-width table first: "Ａ" -> "A" -> "a" needs two passes.
    return to_simplified(text).translate(_FOLD_TABLE).translate(_FOLD_TABLE)


@dataclass(frozen=True, slots=True)
class NormalizedText:
    text: str
    offsets: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        return self.offsets[start], self.offsets[end - 1] + 1


def normalize(text: str) -> NormalizedText:
    folded = fold(text)
    chars: list[str] = []
    offsets: list[int] = []
    last_was_separator = True
    for index, ch in enumerate(folded):
        if ch in _DROPPED:
            continue
        if ch in _SEPARATORS:
            if last_was_separator:
                continue
            ch = SEPARATOR
            last_was_separator = True
        else:
            last_was_separator = False
        chars.append(ch)
        offsets.append(index)
    return NormalizedText("".join(chars), tuple(offsets))


def normalize_key(term: str) -> str:
    """Normalise a taxonomy term the same way as report text, so either script matches."""
    return normalize(term).text.strip(SEPARATOR)
