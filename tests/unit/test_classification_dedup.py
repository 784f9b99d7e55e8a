import pytest

from service.classification import classifier

REPORT = "我们镇派出所所长是黑社会的保护伞，每次检查之前都有人提前通风报信，赌场照常营业，请领导严查。"


def test_resubmitted_report_is_a_near_duplicate():
    again = "我们镇派出所所長是黑社會的保護傘！每次检查之前都有人提前通风报信，赌场照常营业。请领导严查"
    a = classifier.near_duplicate_signature(REPORT)
    b = classifier.near_duplicate_signature(again)
    assert isinstance(a, bytes)
    assert classifier.signature_similarity(a, b) >= 0.8
    assert classifier.signature_similarity(a, a) == 1.0


def test_different_reports_are_not_duplicates():
    a = classifier.near_duplicate_signature(REPORT)
    b = classifier.near_duplicate_signature("楼上邻居天天晚上装修，噪音太大，物业也不管，希望有人处理一下。")
    assert classifier.signature_similarity(a, b) < 0.2


def test_signature_is_stable_and_handles_short_text():
    assert classifier.near_duplicate_signature(REPORT) == classifier.near_duplicate_signature(REPORT)
    short = classifier.near_duplicate_signature("好")
    empty = classifier.near_duplicate_signature("")
    assert len(short) == len(empty) == len(classifier.near_duplicate_signature(REPORT))


def test_signatures_of_different_sizes_do_not_compare():
    with pytest.raises(ValueError):
        classifier.signature_similarity(b"\x00" * 8, b"\x00" * 16)
