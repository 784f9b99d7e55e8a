"""Terms a domain expert would write, not fragments of one report: every term, counter-term and pattern of
the shipped taxonomy that fires at all fires on reports of at least two writers (the corpus's training and
dev writers A, B, C, E-N and the project's own sets; never the test split), or is written in
shared/domain.md."""

import json

from service.classification.corpus import read_labelled
from service.classification.taxonomy import DEFAULT_TAXONOMY_PATH
from service.classification.term_support import prune, single_writer, support
from tests.helpers import REPO_ROOT
from tests.helpers.tools import missing

DATA = REPO_ROOT / "tests" / "data" / "classify"
DOMAIN = REPO_ROOT.parent / "shared" / "domain.md"


def _groups():
    corpus = DATA / "corpus"
    groups = {w: [i["text"] for i in read_labelled(corpus / f"writer-{w}.jsonl")] for w in "ABCEFGHIJKLMN"}
    groups["project"] = [
        i["text"] for name in ("dev.jsonl", "holdout.jsonl") for i in read_labelled(DATA / name)
    ]
    return groups


def test_no_rule_of_the_shipped_taxonomy_exists_for_one_writer():
    if not DOMAIN.is_file():
        missing(f"the domain document {DOMAIN}", "lay the project's shared/ folder beside the repository")
    data = json.loads(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"))
    found = support(data, _groups())
    assert single_writer(found, DOMAIN.read_text(encoding="utf-8")) == []
    assert sum(1 for writers in found.values() if len(writers) >= 2) >= 300


def test_pruning_removes_a_fragment_of_one_report_and_its_aliases():
    data = {
        "version": "t",
        "aliases": {"保户伞": "保护伞", "pcsswjk": "派出所是我家开的"},
        "categories": [
            {
                "id": "gang_protection",
                "tier": "2",
                "name": "保护伞",
                "terms": {"保护伞": 1.0, "派出所是我家开的": 1.0},
            },
            {
                "id": "other",
                "tier": "-",
                "name": "其他",
                "terms": {"装修": 1.0},
                "counter_terms": {"雨伞": 1.0},
            },
        ],
    }
    groups = {
        "A": ["所长是保护伞", "他说派出所是我家开的"],
        "B": ["黑社会的保护伞"],
        "C": ["买了一把雨伞"],
    }
    pruned, removed = prune(data, groups, domain_text="")
    assert removed == [("gang_protection", "term", "派出所是我家开的"), ("other", "counter", "雨伞")]
    assert pruned["categories"][0]["terms"] == {"保护伞": 1.0}
    assert pruned["aliases"] == {"保户伞": "保护伞"}
    kept, removed = prune(data, groups, domain_text="保护伞公司, 雨伞")  # the domain's own words stay
    assert removed == [("gang_protection", "term", "派出所是我家开的")]
