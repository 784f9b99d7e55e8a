"""Near-duplicate signatures: MinHash over character shingles of the normalised text, keyed.

A signature is the little-endian uint64 hash values, ``NUM_PERM`` of them; only signatures made with the
same key and ``NUM_PERM``/``SEED`` compare. Linking duplicates on a clue is the registry's job.

Keyed: each shingle is hashed with keyed BLAKE2b (the server's ``lookup_key(KEY_LABEL)``) before MinHash,
and so is each LSH band. With the public seed alone, a database copy would answer "does report X contain
phrase P" (sign P, compare slots or look its bands up); without the key nobody can sign a guess, so the
stored values say nothing about the text. They still say which stored clues resemble each other — as the
stored links do.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from service.classification.normalize import SEPARATOR, normalize

NUM_PERM = 128
SEED = 20210301
SHINGLE = 3


SCHEME = "affine32"
KEY_LABEL = "near-duplicate"  # runtime.lookup_key(KEY_LABEL): the key for shingles and bands


@lru_cache(maxsize=1)
def _minhash_class():  # type: ignore[no-untyped-def]
    # Imported on first use: datasketch's package imports its LSH, which imports scipy.integrate — about a
    # second at every process start (server, workers, each CLI command) for a class only the intake worker
    # and the re-signing task use.
    from datasketch import MinHash

    return MinHash


def load() -> None:
    """Import datasketch and make the permutations now (an intake worker's start), not on the first tip."""
    _permutations()


@lru_cache(maxsize=1)
def _permutations():
    # Generating permutations costs more than hashing a report: make them once.
    return _minhash_class()(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations


def _shingles(text: str) -> set[bytes]:
    compact = normalize(text).text.replace(SEPARATOR, "")
    if len(compact) <= SHINGLE:
        return {compact.encode("utf-8")} if compact else set()
    return {compact[i : i + SHINGLE].encode("utf-8") for i in range(len(compact) - SHINGLE + 1)}


def _keyed_hashes(shingles: set[bytes], key: bytes) -> list[int]:
    """Keyed BLAKE2b-32 of every shingle, little-endian. The keyed state is made once and copied per
    shingle: a keyed BLAKE2b compresses a whole block for its key, so making it anew for every shingle did
    that work twice (the values are the same either way)."""
    if len(key) < 16:
        raise ValueError("a near-duplicate key has at least 16 bytes")
    keyed = hashlib.blake2b(key=key, digest_size=4, person=b"shingle").copy
    digests = []
    for shingle in shingles:
        state = keyed()
        state.update(shingle)
        digests.append(state.digest())
    return np.frombuffer(b"".join(digests), dtype="<u4").tolist()


def near_duplicate_signature(text: str, *, key: bytes) -> bytes:
    hashes = _keyed_hashes(_shingles(text), key)
    minhash = _minhash_class()(
        num_perm=NUM_PERM, seed=SEED, permutations=_permutations(), scheme=SCHEME, hashfunc=int
    )  # the shingles reach MinHash already hashed (keyed, above): ``int`` passes each value on
    if hashes:
        minhash.update_batch(hashes)
    return np.asarray(minhash.hashvalues, dtype="<u8").tobytes()


def signature_similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets, 0.0 to 1.0."""
    if len(a) != len(b) or len(a) % 8:
        raise ValueError("signatures were made with different parameters")
    left = np.frombuffer(a, dtype="<u8")
    right = np.frombuffer(b, dtype="<u8")
    return float(np.count_nonzero(left == right)) / len(left)


# Locality-sensitive hashing over the signature: BANDS bands of ROWS values each. Two texts share at least
# one band bucket with probability 1 - (1 - s**ROWS)**BANDS at similarity s: about 50% at s = 0.6 and 99%
# at s = 0.8 (threshold ≈ (1/BANDS)**(1/ROWS) ≈ 0.60), so candidates come from an index, not a scan.
BANDS = 21
ROWS = 6


def band_buckets(signature: bytes, *, key: bytes) -> list[tuple[int, int]]:
    """(band, bucket) pairs for the LSH index; bucket is a signed 63-bit keyed hash of the band's values."""
    values = np.frombuffer(signature, dtype="<u8")
    out = []
    for band in range(BANDS):
        chunk = values[band * ROWS : (band + 1) * ROWS].tobytes()
        digest = hashlib.blake2b(chunk, key=key, digest_size=8, person=b"band").digest()
        digest = int.from_bytes(digest, "little") >> 1
        out.append((band, digest))
    return out
