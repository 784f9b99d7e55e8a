import json
from pathlib import Path

import pytest

from service.classification import classifier
from service.classification.taxonomy import (
    DEFAULT_TAXONOMY_PATH,
    TaxonomyError,
    load_taxonomy,
    parse_taxonomy,
    set_configured_path,
)

DEFAULT_IDS = [
    "interference",
    "illegal_business",
    "illegal_equity_lending",
    "sentence_mod_abuse",
    "case_suppression",
    "former_officer_lawyer",
    "gang_protection",
    "enforcement_misconduct",
    "work_style",
    "vice",
    "other",
]


def _minimal() -> dict:
    return {
        "version": "test-1",
        "categories": [
            {"id": "noise", "tier": "N", "name": "噪声", "terms": {"吵闹": 1.0}},
            {"id": "other", "tier": "-", "name": "不属于受理范围", "terms": {"表扬": 1.0}},
        ],
    }


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_default_taxonomy_has_the_6_2_n_categories_in_order():
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_PATH)
    assert taxonomy.category_ids == DEFAULT_IDS
    tiers = {c.id: c.tier for c in taxonomy.categories}
    assert [tiers[c] for c in DEFAULT_IDS[:6]] == ["6"] * 6
    assert tiers["gang_protection"] == tiers["enforcement_misconduct"] == "2"
    assert taxonomy.category("interference").name.startswith("违反防止干预司法")
    assert taxonomy.version


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("version"), "version"),
        (lambda d: d["categories"].pop(), "'other'"),
        (lambda d: d["categories"].append(dict(d["categories"][0])), "duplicate id"),
        (lambda d: d["categories"][0].update(id="Bad-Id"), "must match"),
        (lambda d: d["categories"][0]["terms"].update({"x": "heavy"}), "weight must be a number"),
        (lambda d: d["categories"][0].update(patterns=[{"id": "p", "regex": "(unclosed"}]), "invalid regex"),
        (lambda d: d["categories"][0].update(patterns=[{"id": "p", "regex": "{NOPE}x"}]), "unknown concept"),
        (lambda d: d["categories"][0].update(terms={}), "neither terms nor patterns"),
        (lambda d: d.update(thresholds={"label": -1}), "thresholds.label"),
        (lambda d: d.update(negation={"window": 500}), "negation.window"),
        (lambda d: d.update(negation={"cues": ["没有", "不，是"]}), "negation.cues"),
    ],
)
def test_invalid_taxonomy_is_rejected_with_a_clear_message(mutate, message):
    data = _minimal()
    mutate(data)
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(data)


def test_unreadable_files_raise_taxonomy_error(tmp_path):
    with pytest.raises(TaxonomyError, match="not found"):
        load_taxonomy(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid JSON"):
        load_taxonomy(bad)


def test_concepts_expand_inside_patterns():
    data = _minimal()
    data["concepts"] = {"LOUD": "吵|闹"}
    data["categories"][0]["patterns"] = [{"id": "noise.loud", "regex": "很{LOUD}", "weight": 1.0}]
    taxonomy = parse_taxonomy(data)
    assert taxonomy.category("noise").patterns[0].regex == "很(?:吵|闹)"


def test_patterns_of_any_shape_build_and_match():
    # The engine puts a first-character lookahead before some patterns: never before global flags.
    from service.classification.engine import Engine

    data = _minimal()
    data["categories"][0]["patterns"] = [
        {"id": "noise.case", "regex": "(?i)((?:dj|ktv)|音响)[^|]{0,4}吵", "weight": 1.0},
        {"id": "noise.nested", "regex": "((?:楼上|隔壁)|他们)[^|]{0,4}(?:吵|闹)", "weight": 1.0},
        {"id": "noise.count", "regex": "([一二三]+个月|[0-9]+天)都在闹", "weight": 1.0},
    ]
    engine = Engine(parse_taxonomy(data))
    result = engine.classify("KTV天天吵，隔壁也吵，三个月都在闹")
    fired = {e.id for e in result.evidence if e.kind == "pattern"}
    assert fired == {"noise.case", "noise.nested", "noise.count"}


def test_deployment_file_replaces_default_and_reload_needs_no_restart(tmp_path, monkeypatch):
    path = _write(tmp_path, _minimal())
    set_configured_path(path)  # as the composition root does with TIPLINE_TAXONOMY_PATH
    try:
        taxonomy = classifier.reload_taxonomy()
        assert taxonomy.version == "test-1"
        result = classifier.classify("楼道里天天吵闹")
        assert result.labels == ["noise"]
        assert result.taxonomy_version == "test-1"

        data = _minimal()
        data["version"] = "test-2"
        data["categories"][0]["name"] = "噪声扰民"
        _write(tmp_path, data)
        assert classifier.reload_taxonomy().version == "test-2"
        assert classifier.current_taxonomy().category("noise").name == "噪声扰民"

        path.write_text("[]", encoding="utf-8")
        with pytest.raises(TaxonomyError):
            classifier.reload_taxonomy()
        assert classifier.current_taxonomy().version == "test-2", (
            "a bad file must not replace a good one"
        )
    finally:
        set_configured_path(None)
        classifier.reload_taxonomy()
    assert classifier.current_taxonomy().category_ids == DEFAULT_IDS


def test_staff_corrections_are_validated_against_the_taxonomy():
    assert classifier.validate_labels(["vice", "interference"]) == ["interference", "vice"]
    assert classifier.validate_labels([]) == []
    for bad, message in (
        (["nope"], "unknown"),
        (["vice", "vice"], "twice"),
        (["other", "vice"], "stands alone"),
    ):
        with pytest.raises(classifier.InvalidLabelsError, match=message):
            classifier.validate_labels(bad)
    example = classifier.labelled_example(example_id="r1", text="文本", labels=["vice"])
    assert example == {"id": "r1", "text": "文本", "labels": ["vice"]}
