"""The optional statistical model: off by default, adds evidence when switched on, never removes a label."""

from pathlib import Path

from service.classification import classifier
from tests.helpers.tools import require_module

DEV = Path(__file__).resolve().parents[1] / "data" / "classify" / "dev.jsonl"


def test_model_is_off_by_default():
    result = classifier.classify("所长是黑社会的保护伞")
    assert all(e.kind != "model" for e in result.evidence)


def test_model_adds_evidence_when_switched_on(monkeypatch):
    require_module("sklearn", "pip install -e '.[test]' or '.[model]' (scikit-learn)")
    monkeypatch.setenv(classifier.MODEL_DATA_ENV, str(DEV))
    try:
        classifier.reload_taxonomy()
        result = classifier.classify("派出所副所长天天去棋牌室打牌，一晚上输赢好几万")
        assert "vice" in result.labels
        assert any(e.kind == "model" and e.category == "vice" for e in result.evidence)
        rules_label = classifier.classify("所长是黑社会的保护伞，每次检查都提前通风报信")
        assert "gang_protection" in rules_label.labels
    finally:
        monkeypatch.delenv(classifier.MODEL_DATA_ENV)
        classifier.reload_taxonomy()
    assert all(e.kind != "model" for e in classifier.classify("所长打牌").evidence)
