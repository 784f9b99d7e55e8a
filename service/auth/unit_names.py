"""The names a unit goes by, as recusal compares them: a unit's name and aliases are matched against what a
reporter wrote after the same normalisation (NFKC, no spaces, punctuation or symbols), and the distinctive
part of a name is what is left without the generic words 公安局, 派出所, 法院…. Units own their names, so
this lives here; ``registry.recusal`` matches with it, and the unit services check new names and aliases
with it (two units must not answer to the same words, and an alias recusal would ignore is refused)."""

from __future__ import annotations

import json
import re
import unicodedata

from service.auth.models import Unit

# Generic parts of Chinese unit names, longest first: what is left of a name is its distinctive part.
GENERIC_WORDS = sorted(
    {
        "中华人民共和国",
        "人民法院",
        "人民检察院",
        "公安分局",
        "公安局",
        "派出所",
        "检察院",
        "法院",
        "司法局",
        "司法所",
        "看守所",
        "拘留所",
        "戒毒所",
        "监狱",
        "政法委员会",
        "政法委",
        "纪委监委",
        "纪委",
        "监委",
        "委员会",
        "刑警大队",
        "交警大队",
        "大队",
        "中队",
        "支队",
        "警务室",
        "人民",
        "街道",
        "分局",
        "省",
        "市",
        "区",
        "县",
        "镇",
        "乡",
        "局",
        "所",
        "院",
        "队",
        "科",
        "处",
        "庭",
        "室",
        "民警",
        "辅警",
        "警察",
        "法官",
        "检察官",
    },
    key=len,
    reverse=True,
)
_GENERIC = re.compile("|".join(map(re.escape, GENERIC_WORDS)))
MIN_MATCH_LENGTH = 2  # shorter names would match almost any text; recusal ignores them


def normalise(text: str) -> str:
    """NFKC, without spaces, punctuation or symbols ("城关派出所。" is "城关派出所")."""
    return "".join(
        ch
        for ch in unicodedata.normalize("NFKC", text)
        if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZC"
    )


def distinctive(name: str) -> str:
    return _GENERIC.sub("", normalise(name))


def aliases_of(unit: Unit) -> list[str]:
    return list(json.loads(unit.aliases or "[]"))


def unit_names(unit: Unit) -> list[str]:
    """The unit's name and aliases as recusal compares them (too short ones left out)."""
    names = [unit.name, *aliases_of(unit)]
    return [n for n in (normalise(name) for name in names) if len(n) >= MIN_MATCH_LENGTH]
