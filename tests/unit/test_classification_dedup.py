import pytest

from service.classification import classifier, dedup

REPORT = "我们镇派出所所长是黑社会的保护伞，每次检查之前都有人提前通风报信，赌场照常营业，请领导严查。"
KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def _sign(text: str, key: bytes = KEY) -> bytes:
    return classifier.near_duplicate_signature(text, key=key)


def test_resubmitted_report_is_a_near_duplicate():
    again = "我们镇派出所所長是黑社會的保護傘！每次检查之前都有人提前通风报信，赌场照常营业。请领导严查"
    a = _sign(REPORT)
    b = _sign(again)
    assert isinstance(a, bytes)
    assert classifier.signature_similarity(a, b) >= 0.8
    assert classifier.signature_similarity(a, a) == 1.0


def test_different_reports_are_not_duplicates():
    a = _sign(REPORT)
    b = _sign("楼上邻居天天晚上装修，噪音太大，物业也不管，希望有人处理一下。")
    assert classifier.signature_similarity(a, b) < 0.2


def test_signature_is_stable_and_handles_short_text():
    assert _sign(REPORT) == _sign(REPORT)
    short = _sign("好")
    empty = _sign("")
    assert len(short) == len(empty) == len(_sign(REPORT))


def test_signatures_of_different_sizes_do_not_compare():
    with pytest.raises(ValueError):
        classifier.signature_similarity(b"\x00" * 8, b"\x00" * 16)


def test_without_the_key_a_guess_neither_matches_a_signature_nor_finds_its_bands():
    stored = _sign(REPORT)
    guess = _sign(REPORT, OTHER_KEY)  # the very same text, signed with any other key
    assert classifier.signature_similarity(stored, guess) < 0.1
    stored_bands = set(dedup.band_buckets(stored, key=KEY))
    assert not stored_bands & set(dedup.band_buckets(guess, key=OTHER_KEY))
    # Even the right signature, banded without the key, is not in the index.
    assert not stored_bands & set(dedup.band_buckets(stored, key=OTHER_KEY))


def test_a_short_key_is_refused():
    with pytest.raises(ValueError):
        _sign(REPORT, b"short")


def test_signature_is_the_documented_scheme():
    """Stored signatures compare with new ones only if the values never change: recompute the scheme the
    plain way (datasketch's MinHash, each shingle hashed by a freshly keyed BLAKE2b-32) as the oracle."""
    import hashlib

    import numpy as np
    from datasketch import MinHash

    def keyed(shingle: bytes) -> int:
        digest = hashlib.blake2b(shingle, key=KEY, digest_size=4, person=b"shingle").digest()
        return int.from_bytes(digest, "little")

    for text in (REPORT, "好", "三个字", "Ｔｉｐ：派出所 * 所长", ""):
        oracle = MinHash(num_perm=dedup.NUM_PERM, seed=dedup.SEED, scheme=dedup.SCHEME, hashfunc=keyed)
        shingles = dedup._shingles(text)
        if shingles:
            oracle.update_batch(list(shingles))
        assert _sign(text) == np.asarray(oracle.hashvalues, dtype="<u8").tobytes(), text
