"""Every classification result of the test texts, one line each, to check that a speed-up changes nothing.

Run it in the checkout before a change and in the one after, then compare the two files (``cmp``): labels,
scores, probabilities and every evidence entry with its span, with the model and rules only, with and without
a category hint, on the corpus, dev and holdout sets, the benchmark's generated reports and generated texts
dense in negation words, clause ends and the patterns' opening words. Only repository test data is read.

Usage:  python bench/classify_outputs.py OUT.jsonl      (prints the number of texts and a SHA-256 of OUT)
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_classify import make_reports  # noqa: E402
from service.classification.engine import Engine  # noqa: E402
from service.classification.model import load_model  # noqa: E402
from service.classification.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy  # noqa: E402

PIECES = [*"他她说给交出拿送向找跟原前收要罚像股没不|，。！？ A a"] + (
    "副所长 所长 派出所 民警 法官 老婆 儿子 法院 老板 公司 开了 经营 三万 借钱 打 罩着 没有 但是 他们 没想到 "
    "不是 并没有 张口 要钱 判了 出来了 报警 不管 以前 律师 一伙 天天 感谢 过问 警察 KTV ktv 赌场 保护伞 红包 "
    "police 贿赂"
).split()


def texts() -> list[str]:
    data = ROOT / "tests/data/classify"
    files = [*sorted((data / "corpus").glob("*.jsonl")), data / "dev.jsonl", data / "holdout.jsonl"]
    out = [json.loads(line)["text"] for f in files for line in f.open(encoding="utf-8") if line.strip()]
    out += make_reports(1000)
    rng = random.Random(5)
    out += ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 80))) for _ in range(3000)]
    return [*out, "", " ", "|", "，，", "a"]


def main(argv: list[str]) -> int:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_PATH)
    both, rules = Engine(taxonomy, model=load_model(DEFAULT_TAXONOMY_PATH)), Engine(taxonomy)
    digest = hashlib.sha256()
    all_texts = texts()
    with open(argv[0], "w", encoding="utf-8") as out:
        for i, text in enumerate(all_texts):
            for hint in (None, "other") if i % 7 == 0 else (None,):
                record = [
                    repr(both.classify(text, hint).to_dict()),
                    repr(rules.classify(text, hint).to_dict()),
                    repr(rules.rule_scores(text, hint)),
                ]
                line = json.dumps(record, ensure_ascii=False) + "\n"
                out.write(line)
                digest.update(line.encode())
    print(len(all_texts), digest.hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
