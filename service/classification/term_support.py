"""Which writers' reports each term, counter-term and pattern fires on, and pruning the ones that exist for
one report.

A rule is kept when it fires on reports of at least two independent writers (the corpus's training and dev
writers, and the project's own labelled sets counted as one more writer), or when it is written in the
domain's own document (``shared/domain.md``). A rule that fires on one writer's reports only was, as
far as the data can tell, lifted from those reports; a rule that fires on none is left as written (it
cannot be memorised data). The test split is never used here.

    python -m service.classification.term_support TAXONOMY DOMAIN_MD GROUP=FILE[,FILE] ... [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from service.classification.corpus import read_labelled
from service.classification.engine import Engine
from service.classification.taxonomy import parse_taxonomy

RuleKey = tuple[str, str, str]  # (category, "term" | "counter" | "pattern", term or pattern id)
MIN_WRITERS = 2


def fired(engine: Engine, text: str) -> set[RuleKey]:
    """The rules that matched ``text`` (a denied term counts: it matched the words)."""
    out: set[RuleKey] = set()
    for e in engine.classify(text).evidence:
        if e.kind in ("term", "alias", "negated"):
            out.add((e.category, "term", e.id))
        elif e.kind in ("counter", "pattern"):
            out.add((e.category, e.kind, e.id))
    return out


def support(taxonomy_data: dict[str, Any], groups: Mapping[str, Sequence[str]]) -> dict[RuleKey, set[str]]:
    """For every rule of the taxonomy, the groups (writers) whose texts it fires on."""
    engine = Engine(parse_taxonomy(taxonomy_data))
    found: dict[RuleKey, set[str]] = {key: set() for key in rules(taxonomy_data)}
    for group, texts in groups.items():
        for text in texts:
            for key in fired(engine, text):
                if key in found:
                    found[key].add(group)
    return found


def rules(taxonomy_data: dict[str, Any]) -> list[RuleKey]:
    out: list[RuleKey] = []
    for category in taxonomy_data["categories"]:
        out += [(category["id"], "term", t) for t in category.get("terms", {})]
        out += [(category["id"], "counter", t) for t in category.get("counter_terms", {})]
        out += [(category["id"], "pattern", p["id"]) for p in category.get("patterns", [])]
    return out


def single_writer(found: Mapping[RuleKey, set[str]], domain_text: str) -> list[RuleKey]:
    """Rules that fire on exactly one writer's reports and are not in the domain document."""
    return [
        key
        for key, writers in found.items()
        if 0 < len(writers) < MIN_WRITERS and not (key[1] != "pattern" and key[2] in domain_text)
    ]


def prune(
    taxonomy_data: dict[str, Any], groups: Mapping[str, Sequence[str]], domain_text: str
) -> tuple[dict[str, Any], list[RuleKey]]:
    """Remove single-writer rules until none is left (removing a long term can let a shorter one inside
    it fire); aliases of removed terms go too."""
    data = json.loads(json.dumps(taxonomy_data))
    removed: list[RuleKey] = []
    while True:
        doomed = set(single_writer(support(data, groups), domain_text))
        if not doomed:
            break
        removed += sorted(doomed)
        for category in data["categories"]:
            cid = category["id"]
            category["terms"] = {
                t: w for t, w in category.get("terms", {}).items() if (cid, "term", t) not in doomed
            }
            category["counter_terms"] = {
                t: w
                for t, w in category.get("counter_terms", {}).items()
                if (cid, "counter", t) not in doomed
            }
            category["patterns"] = [
                p for p in category.get("patterns", []) if (cid, "pattern", p["id"]) not in doomed
            ]
    targets = {t for c in data["categories"] for t in c["terms"]} | set(data.get("actors", {}))
    data["aliases"] = {v: t for v, t in data.get("aliases", {}).items() if t in targets}
    return data, removed


def _groups(specs: Sequence[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for spec in specs:
        name, _, files = spec.partition("=")
        for path in files.split(","):
            groups.setdefault(name, []).extend(item["text"] for item in read_labelled(path))
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="list (and with --write remove) single-writer rules")
    parser.add_argument("taxonomy", type=Path)
    parser.add_argument("domain", type=Path, help="the domain document (shared/domain.md)")
    parser.add_argument("groups", nargs="+", metavar="WRITER=FILE[,FILE]")
    parser.add_argument("--write", action="store_true", help="rewrite the taxonomy file without them")
    parser.add_argument("--version", help="new taxonomy version (with --write)")
    args = parser.parse_args(argv)
    data = json.loads(args.taxonomy.read_text(encoding="utf-8"))
    pruned, removed = prune(data, _groups(args.groups), args.domain.read_text(encoding="utf-8"))
    for category, kind, rule in removed:
        print(f"{category}\t{kind}\t{rule}")
    print(f"{len(removed)} single-writer rules", file=sys.stderr)
    if args.write:
        if args.version:
            pruned["version"] = args.version
        args.taxonomy.write_text(json.dumps(pruned, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
