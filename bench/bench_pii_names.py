"""Personal-data detection per 500-character report, before and after the segmenter-based reporter-name
detection (issue 16). "Before" is ``service/classification/pii.py`` at ``--before`` (a git revision, by
default the last one with regular-expression names only), loaded from git; "after" is the working tree.
Two corpora, each run together and cut to 500 characters: the reporter-name set (a cue every 80
characters or so: the worst case) and the classification dev set (reports as they come). Then the
near-duplicate signature, unkeyed (the public seed, as before) and keyed (now). Prints both of each.

    .venv/bin/python bench/bench_pii_names.py [--reports 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasketch import MinHash  # noqa: E402

from service.classification import dedup, pii  # noqa: E402

BEFORE = "cba8e50"  # main before reporter names: names from a few regular expressions
REPORT_CHARS = 500


def reports(count: int, corpus: str = "reporter_names.jsonl") -> list[str]:
    lines = (ROOT / "tests" / "data" / "classify" / corpus).read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in lines.splitlines() if line.strip()]
    out, at = [], 0
    while len(out) < count:
        chunk = ""
        while len(chunk) < REPORT_CHARS:
            chunk += texts[at % len(texts)]
            at += 1
        out.append(chunk[:REPORT_CHARS])
    return out


def load_before(revision: str):  # type: ignore[no-untyped-def]
    source = subprocess.run(  # noqa: S603 - git, with a revision given on our own command line
        ["git", "-C", str(ROOT), "show", f"{revision}:service/classification/pii.py"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False, encoding="utf-8") as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("pii_before", handle.name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["pii_before"] = module
    spec.loader.exec_module(module)
    Path(handle.name).unlink()
    return module


def per_report_ms(func, texts: list[str], repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    best: list[float] = []
    for _ in range(repeat):
        times = []
        for text in texts:
            began = time.perf_counter()
            func(text)
            times.append((time.perf_counter() - began) * 1000)
        if not best or statistics.mean(times) < statistics.mean(best):
            best = times
    best.sort()
    return statistics.mean(best), best[int(len(best) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", default=BEFORE)
    args = parser.parse_args()
    began = time.perf_counter()
    pii.find_personal_data("我叫王建国。")  # the segmenter loads its dictionary once per process
    load_ms = (time.perf_counter() - began) * 1000
    before = load_before(args.before)
    for corpus in ("reporter_names.jsonl", "dev.jsonl"):
        texts = reports(args.reports, corpus)
        print(f"{corpus}, {len(texts)} reports of {REPORT_CHARS} characters")
        for name, func in (
            (f"  before ({args.before}, regular expressions)", before.find_personal_data),
            ("  after (segmenter + surname list)", pii.find_personal_data),
        ):
            mean, p95 = per_report_ms(func, texts, args.repeat)
            rate = 1000 / mean
            print(f"{name:45s} mean {mean:6.2f} ms  p95 {p95:6.2f} ms  ({rate:6.0f} reports/s, one core)")
    print(f"segmenter dictionary load (once per process): {load_ms:.0f} ms")
    texts = reports(args.reports, "dev.jsonl")
    for name, func in (
        ("MinHash signature, unkeyed (before)", unkeyed_signature),
        (
            "MinHash signature, keyed BLAKE2b (after)",
            lambda text: dedup.near_duplicate_signature(text, key=KEY),
        ),
    ):
        mean, p95 = per_report_ms(func, texts, args.repeat)
        print(f"{name:45s} mean {mean:6.2f} ms  p95 {p95:6.2f} ms")


KEY = bytes(32)  # any key costs the same


def unkeyed_signature(text: str) -> bytes:
    minhash = MinHash(
        num_perm=dedup.NUM_PERM, seed=dedup.SEED, permutations=dedup._permutations(), scheme=dedup.SCHEME
    )
    shingles = dedup._shingles(text)
    if shingles:
        minhash.update_batch(list(shingles))
    return minhash.hashvalues.tobytes()


if __name__ == "__main__":
    main()
