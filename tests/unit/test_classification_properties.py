"""Property tests: any text classifies, and every span points inside the original text."""

from hypothesis import given, settings
from hypothesis import strategies as st

from service.classification import classifier
from service.classification.normalize import normalize

ALPHABET = st.sampled_from(
    list("派出所所長法官收紅包保護傘没有但是，。！？ 　ＡＢ１２３abc138０-_*（）【】\n\t")
    + ["打招呼", "不立案", "13812345678", "粤A12345", "bhs", "\u200b", "𠀀", "é"]
)
TEXT = st.lists(ALPHABET, max_size=60).map("".join) | st.text(max_size=80)


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_classify_never_fails_and_spans_are_in_range(text):
    result = classifier.classify(text)
    assert result.needs_triage == (result.labels == [])
    assert "other" not in result.labels or result.labels == ["other"]
    for e in result.evidence:
        assert 0 <= e.start <= e.end <= len(text)
        if e.kind not in ("hint", "model"):
            assert e.end > e.start


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_normalised_offsets_point_at_kept_characters(text):
    norm = normalize(text)
    offsets = norm.offsets
    assert len(offsets) == len(norm.text)
    assert list(offsets) == sorted(set(offsets))
    assert all(0 <= o < len(text) for o in offsets)


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_personal_data_spans_are_in_range_and_disjoint(text):
    spans = classifier.find_personal_data(text)
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)
        previous_end = span.end
    classifier.mask_personal_data(text, spans)
