"""The learned model: shipped beside the taxonomy and on by default, loaded without pickle and checked
against its checksum, combined with the rules so that needs_triage means "not confident", explained by its
strongest n-grams with spans on the original text."""

import hashlib
import io
import json
import math
import shutil
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from service.classification import classifier
from service.classification import model as artifact
from service.classification.engine import Engine
from service.classification.normalize import normalize
from service.classification.taxonomy import (
    DEFAULT_TAXONOMY_PATH,
    TaxonomyError,
    load_taxonomy,
    parse_taxonomy,
)

STORY = "派出所副所长天天晚上去棋牌室打麻将，一晚上输赢好几万，穿着警服就去了"


def test_model_is_on_by_default_and_named_in_every_result():
    model = classifier.current_model()
    assert model is not None and model.version.startswith("m")
    result = classifier.classify(STORY)
    assert result.model_version == model.version
    assert result.to_dict()["model_version"] == model.version
    assert result.labels[0] == "vice"


def test_evidence_shows_the_model_and_its_strongest_ngrams_on_the_original_text():
    text = "城南派出所的副所長天天晚上去棋牌室打麻將，一晚上輸贏好幾萬"  # traditional characters
    result = classifier.classify(text)
    assert "vice" in result.labels
    model_evidence = [e for e in result.evidence if e.kind == "model" and e.category == "vice"]
    summary = [e for e in model_evidence if e.id == "model"]
    ngrams = [e for e in model_evidence if e.id != "model"]
    # the model's own probability, rounded to 3 decimals: a very confident model shows 1.0
    assert len(summary) == 1 and 0 < summary[0].weight <= 1
    assert 1 <= len(ngrams) <= 3 and all(e.weight > 0 for e in ngrams)
    for e in ngrams:  # the span is on the original text and normalises to the n-gram
        assert normalize(text[e.start : e.end]).text == e.id


def test_needs_triage_means_the_best_probability_is_below_the_threshold():
    model = classifier.current_model()
    taxonomy = load_taxonomy()
    texts = [STORY, "我要反映一个情况", "那个所长有问题，大家都知道", "法官收红包", "楼上邻居装修噪音太大"]
    seen = set()
    # The shipped threshold (0.1) sends few reports to a person; a cautious one (0.5) sends the vague ones.
    for engine in (
        Engine(taxonomy, model=model),
        Engine(taxonomy, model=replace(model, triage_threshold=0.5)),
    ):
        for text in texts:
            result = engine.classify(text)
            best = max(result.scores.values())
            assert result.needs_triage == (best < engine.model.triage_threshold) == (result.labels == [])
            assert all(0.0 <= v <= 1.0 for v in result.scores.values())
            seen.add(result.needs_triage)
    assert seen == {True, False}
    never_sure = Engine(taxonomy, model=replace(model, triage_threshold=1.0))
    assert never_sure.classify(STORY).labels == [] and never_sure.classify(STORY).needs_triage


def test_a_report_the_rules_name_keeps_its_label():
    result = classifier.classify("所长是黑社会的保护伞，每次检查都提前通风报信")
    assert result.labels[0] == "gang_protection"
    assert any(e.kind == "term" and e.id == "保护伞" for e in result.evidence)


def test_ngram_keys_pack_and_unpack_every_code_point():
    keys = artifact.ngram_keys("a报𠀀|")
    grams = [artifact.key_text(k) for k in keys]
    assert grams == ["a", "报", "𠀀", "|", "a报", "报𠀀", "𠀀|", "a报𠀀", "报𠀀|"]
    assert len(set(keys.tolist())) == len(keys)
    assert artifact.ngram_keys("").size == 0


def _copy_beside(tmp_path):
    taxonomy = tmp_path / "taxonomy.json"
    shutil.copyfile(DEFAULT_TAXONOMY_PATH, taxonomy)
    meta, arrays = artifact.artifact_paths(DEFAULT_TAXONOMY_PATH)
    shutil.copyfile(meta, tmp_path / "taxonomy.model.json")
    shutil.copyfile(arrays, tmp_path / "taxonomy.model.npz")
    return taxonomy


def test_artifact_round_trips_and_refuses_tampering(tmp_path):
    taxonomy = _copy_beside(tmp_path)
    loaded = artifact.load_model(taxonomy)
    assert loaded.version == classifier.current_model().version
    arrays = tmp_path / "taxonomy.model.npz"
    blob = bytearray(arrays.read_bytes())
    blob[-40] ^= 0xFF
    arrays.write_bytes(bytes(blob))
    with pytest.raises(artifact.ModelError, match="arrays_sha256"):
        artifact.load_model(taxonomy)
    arrays.unlink()
    with pytest.raises(artifact.ModelError, match="missing"):
        artifact.load_model(taxonomy)
    (tmp_path / "taxonomy.model.json").unlink()
    assert artifact.load_model(taxonomy) is None  # no model beside a taxonomy: the rules alone


def test_an_object_array_is_never_unpickled(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, vocabulary=np.array([{"x": 1}], dtype=object), idf=np.zeros(1), coef=np.zeros((1, 1)),
             intercept=np.zeros(1), stack=np.zeros((1, 5)))  # fmt: skip
    blob = buffer.getvalue()
    meta = {
        "format": artifact.FORMAT,
        "version": "x",
        "classes": ["other"],
        "triage_threshold": 0.3,
        "secondary_threshold": 0.5,
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
    }
    with pytest.raises(artifact.ModelError, match="unreadable arrays"):
        artifact.parse_model(meta, blob)


def test_a_bad_artifact_keeps_the_engine_in_force(tmp_path):
    taxonomy = _copy_beside(tmp_path)
    meta_path = tmp_path / "taxonomy.model.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["triage_threshold"] = 7
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    before = classifier.current_model()
    with pytest.raises(TaxonomyError, match="thresholds"):
        classifier.reload_taxonomy(taxonomy)
    assert classifier.current_model() is before
    with pytest.raises(TaxonomyError):
        classifier.validate_taxonomy_file(taxonomy)


def test_a_deployment_category_the_model_does_not_know_keeps_the_rules_score():
    data = json.loads(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"))
    data["categories"].insert(
        -1, {"id": "land_seizure", "tier": "N", "name": "违法征地拆迁", "terms": {"强拆": 1.5, "征地": 1.0}}
    )
    engine = Engine(parse_taxonomy(data), model=classifier.current_model())
    result = engine.classify("派出所民警带人来强拆我家房子，说是征地")
    assert "land_seizure" in result.labels
    assert result.scores["land_seizure"] == round(2.5 / (2.5 + 0.8), 3)  # raw / (raw + label threshold)
    assert not any(e.kind == "model" and e.category == "land_seizure" for e in result.evidence)


@pytest.mark.parametrize("size", [0, 1, 2, 7, 100, 3000, 40000])
def test_the_ngram_index_finds_every_vocabulary_key_and_nothing_else(size):
    rng = np.random.default_rng(size)
    vocabulary = np.unique(rng.integers(1, 2**63 - 1, size=size, dtype=np.int64))
    index = artifact.NgramIndex.build(vocabulary)
    assert index.rows(vocabulary).tolist() == list(range(len(vocabulary)))
    others = np.setdiff1d(rng.integers(1, 2**63 - 1, size=5000, dtype=np.int64), vocabulary)
    assert index.rows(others).size == 0
    mixed = np.concatenate([others[:50], vocabulary[::-1], others[50:100]])
    assert index.rows(mixed).tolist() == list(range(len(vocabulary)))[::-1]


def test_features_are_those_of_a_binary_search_over_the_sorted_vocabulary():
    model = classifier.current_model()
    text = normalize("城南派出所的副所長天天晚上去棋牌室打麻將，一晚上輸贏好幾萬，还让他老婆开了家KTV").text
    keys, counts = np.unique(artifact.ngram_keys(text), return_counts=True)
    position = np.minimum(np.searchsorted(model.vocabulary, keys), len(model.vocabulary) - 1)
    hit = model.vocabulary[position] == keys
    found = model.features(text)
    assert found.index.tolist() == position[hit].tolist()
    assert np.allclose(found.values, artifact.tfidf_row(counts[hit], model.idf[position[hit]]))


def _reference_explanation(model, text: str) -> tuple[list[float], dict[str, tuple[int, list[float]]]]:
    """The model's logits and, per n-gram of the text in the vocabulary, (first position in the normalised
    text, contribution to each class's logit), computed the plain way: a Counter of the n-grams, TF-IDF
    in Python, a dictionary for the vocabulary."""
    rows = _vocabulary_rows(model)
    norm = normalize(text).text
    counts = Counter(
        norm[i : i + n] for n in range(1, artifact.NGRAM_MAX + 1) for i in range(len(norm) - n + 1)
    )
    found = {g: (1.0 + math.log(c)) * float(model.idf[rows[g]]) for g, c in counts.items() if g in rows}
    norm2 = math.sqrt(sum(v * v for v in found.values())) or 1.0
    contributions = {
        g: (norm.find(g), [float(model.coef[k, rows[g]]) * v / norm2 for k in range(len(model.classes))])
        for g, v in found.items()
    }
    logits = [
        float(model.intercept[k]) + sum(c[k] for _, c in contributions.values())
        for k in range(len(model.classes))
    ]
    return logits, contributions


_ROWS: dict[str, dict[str, int]] = {}


def _vocabulary_rows(model) -> dict[str, int]:
    if model.version not in _ROWS:
        _ROWS[model.version] = {artifact.key_text(k): row for row, k in enumerate(model.vocabulary.tolist())}
    return _ROWS[model.version]


def test_the_explanation_is_each_shown_label_and_its_three_strongest_ngrams_at_their_first_occurrence():
    """On every report of the dev and holdout sets: for the labels given (or a triaged report's best guess),
    the model's probability for the label and the n-grams that push its logit up most (at most three,
    positive only) with their contribution, each spanning the n-gram's first occurrence in the original
    text. The engine ranks them with numpy on the report's sparse features; here they are recomputed
    from scratch (to rounding)."""
    model = classifier.current_model()
    engine = Engine(load_taxonomy(), model=model)
    root = DEFAULT_TAXONOMY_PATH.parents[2] / "tests" / "data" / "classify"
    texts = [
        json.loads(line)["text"]
        for name in ("dev.jsonl", "holdout.jsonl")
        for line in (root / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(texts) > 300
    for text in texts:
        result = engine.classify(text)
        logits, contributions = _reference_explanation(model, text)
        shown = [e.category for e in result.evidence if e.kind == "model" and e.id == "model"]
        if result.labels:
            assert sorted(shown) == sorted(c for c in result.labels if c in model.classes)
        else:
            assert len(shown) == 1 and result.scores[shown[0]] == max(result.scores.values())
        norm = normalize(text)
        for category in shown:
            k = model.classes.index(category)
            summary = [
                e for e in result.evidence if e.kind == "model" and e.id == "model" and e.category == category
            ]
            assert summary[0].weight == pytest.approx(1 / (1 + math.exp(-logits[k])), abs=1.5e-3)
            assert summary[0][2:4] == (0, 0)
            # (the evidence is in text order: strongest first among the n-grams means by weight here)
            ngrams = [
                e for e in result.evidence if e.kind == "model" and e.id != "model" and e.category == category
            ]
            ngrams.sort(key=lambda e: contributions[e.id][1][k], reverse=True)
            positive = sorted((c[k] for _, c in contributions.values() if c[k] > 0), reverse=True)
            assert len(ngrams) == min(3, len(positive))
            for e, expected in zip(ngrams, positive, strict=False):
                first, c = contributions[e.id]
                assert e.weight == pytest.approx(c[k], abs=1.5e-3)
                assert c[k] == pytest.approx(expected, abs=1e-9)  # the strongest ones, none left out
                assert (e.start, e.end) == norm.original_span(first, first + len(e.id))  # first occurrence
                assert normalize(text[e.start : e.end]).text == e.id


def test_the_competing_logit_is_the_best_other_category_s_in_training_and_in_the_service():
    from service.classification.training import competing_logits  # scikit-learn side: imported here only

    z = np.array([[2.0, -1.0, 0.5], [-3.0, -3.0, -4.0], [0.0, 1.0, 1.0]])
    expected = [[0.5, 2.0, 2.0], [-3.0, -3.0, -3.0], [1.0, 1.0, 1.0]]
    assert competing_logits(z).tolist() == expected
    assert [artifact.competing_logits(row) for row in z.tolist()] == expected


def test_a_format_2_artifact_is_read_with_no_weight_on_the_competing_logit():
    shipped = classifier.current_model()
    column = artifact.STACK_COLUMNS.index("competing_model_logit")
    old = replace(shipped, stack=np.delete(shipped.stack, column, axis=1))
    buffer = io.BytesIO()
    np.savez(buffer, vocabulary=old.vocabulary, idf=old.idf, coef=old.coef, intercept=old.intercept,
             stack=old.stack)  # fmt: skip
    blob = buffer.getvalue()
    meta = {**artifact.describe(old, hashlib.sha256(blob).hexdigest()), "format": 2}
    loaded = artifact.parse_model(meta, blob)
    assert loaded.stack.shape == shipped.stack.shape
    assert not loaded.stack[:, column].any()
    keep = [i for i in range(len(artifact.STACK_COLUMNS)) if i != column]
    assert np.array_equal(loaded.stack[:, keep], old.stack)
    # Without that column the probabilities are the format-2 formula's: the model's and rules' terms only.
    width = len(shipped.classes)
    logits, raw, rival = [1.5] + [-2.0] * (width - 1), [0.0] * width, [0.0] * width
    a, b, d, f, g, e = loaded.stack[0]
    assert loaded.combine(logits, raw, rival, 1.0)[0] == pytest.approx(1 / (1 + math.exp(-(a * 1.5 + f + e))))
