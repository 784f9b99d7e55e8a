"""Quality gates on the committed dev set: CI fails when macro-F1 drops more than 0.02 below the record."""

import json
from pathlib import Path

from service.classification import classifier
from service.classification.evaluation import evaluate

DATA = Path(__file__).resolve().parents[1] / "data" / "classify"
TOLERANCE = 0.02


def _load(name):
    with open(DATA / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_dev_set_is_large_and_varied_enough():
    dev = _load("dev.jsonl")
    assert len(dev) >= 250
    assert len({item["id"] for item in dev}) == len(dev)
    known = set(classifier.current_taxonomy().category_ids)
    assert all(item["labels"] and set(item["labels"]) <= known for item in dev)
    assert all("other" not in item["labels"] or item["labels"] == ["other"] for item in dev)


def test_dev_macro_f1_does_not_regress():
    recorded = json.loads((DATA / "macro_f1.json").read_text(encoding="utf-8"))
    dev = _load("dev.jsonl")
    report = evaluate((item["labels"], classifier.classify(item["text"]).labels) for item in dev)
    assert report.macro_f1 >= recorded["dev_macro_f1"] - TOLERANCE, "\n".join(report.lines())


def test_personal_data_precision_and_recall_on_dev_set():
    recorded = json.loads((DATA / "macro_f1.json").read_text(encoding="utf-8"))
    tp = fp = fn = 0
    for item in _load("dev.jsonl"):
        gold = {(p["start"], p["end"], p["kind"]) for p in item.get("pii", [])}
        found = {(s.start, s.end, s.kind) for s in classifier.find_personal_data(item["text"])}
        tp += len(gold & found)
        fp += len(found - gold)
        fn += len(gold - found)
    assert tp / (tp + fp) >= recorded["pii_precision"] - TOLERANCE
    assert tp / (tp + fn) >= recorded["pii_recall"] - TOLERANCE
