"""Quality gates: CI measures the classifier in force (rules and model) on the FROZEN, writer-disjoint test
split of the independent corpus, never on data anything was tuned on. It fails when macro-F1 drops more than
0.02 below the recorded figure or when one category's recall falls below its floor."""

import json
from pathlib import Path

import pytest

from service.classification import classifier
from service.classification.corpus import load_corpus
from service.classification.evaluation import evaluate

DATA = Path(__file__).resolve().parents[1] / "data" / "classify"
TOLERANCE = 0.02
RECORDED = json.loads((DATA / "macro_f1.json").read_text(encoding="utf-8"))


def _load(name):
    with open(DATA / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def test_report():
    corpus = load_corpus(DATA / "corpus", classifier.current_taxonomy().category_ids)  # checks the hashes
    test = corpus.splits["test"]
    return evaluate((item["labels"], classifier.classify(item["text"]).labels) for item in test)


def test_the_model_in_force_is_the_recorded_one():
    model = classifier.current_model()
    assert model is not None, "the model artifact beside the default taxonomy is missing"
    assert model.version == RECORDED["model_version"]


def test_test_split_macro_f1_does_not_regress(test_report):
    assert test_report.macro_f1 >= RECORDED["test_macro_f1"] - TOLERANCE, "\n".join(test_report.lines())


def test_no_category_collapses_behind_the_average(test_report):
    floors = RECORDED["test_recall_floors"]
    assert set(floors) == {s.category for s in test_report.per_category}
    low = {s.category: round(s.recall, 3) for s in test_report.per_category if s.recall < floors[s.category]}
    assert not low, f"recall below the floor: {low}\n" + "\n".join(test_report.lines())


def test_personal_data_precision_and_recall_on_dev_set():
    tp = fp = fn = 0
    for item in _load("dev.jsonl"):
        gold = {(p["start"], p["end"], p["kind"]) for p in item.get("pii", [])}
        found = {(s.start, s.end, s.kind) for s in classifier.find_personal_data(item["text"])}
        tp += len(gold & found)
        fp += len(found - gold)
        fn += len(gold - found)
    assert tp / (tp + fp) >= RECORDED["pii_precision"] - TOLERANCE
    assert tp / (tp + fn) >= RECORDED["pii_recall"] - TOLERANCE
