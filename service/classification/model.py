"""The learned part of the classifier: character n-grams with a linear model, and its artifact on disk.

Inference is numpy only (training, with scikit-learn, is in ``training.py``): the normalised text's
code points are packed into integer keys for every 1-, 2- and 3-gram in a few vectorised operations, looked
up in the sorted vocabulary, weighted by sublinear TF-IDF and multiplied with the coefficients. No Python
loop runs per character: about 140 µs of CPU for a 500-character report on the loaded development machine.

The artifact is two files beside the taxonomy (``taxonomy.json`` -> ``taxonomy.model.json`` and
``taxonomy.model.npz``): the JSON holds the version, the classes, the thresholds, the stacking weights and the
figures it was accepted on; the ``.npz`` holds the arrays (vocabulary keys, idf, coefficients, intercepts)
and is read with ``allow_pickle=False``, its SHA-256 checked against the JSON. Nothing is unpickled.

Combination with the rules (stacking): for each category ``c`` the calibrated probability is
``p_c = sigmoid(a_c * z_c + b_c * r_c + d_c * q_c + f_c * actor + e_c)`` where ``z_c`` is the model's logit,
``r_c`` the rules' raw score, ``q_c`` the strongest competing rule score (``other``'s for a misconduct
category, the best misconduct score for ``other``) and ``actor`` 1 when a political-legal actor word (警察,
法院, 派出所, …) occurs. The weights are fitted on out-of-writer predictions of the training
split, so ``p`` means "how often a report scored like this really has label c".
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from service.classification.taxonomy import TaxonomyError

# 1: coefficients (keys, classes), no actor_named column in the stack (read as weight 0); 2: no
# competing_model_logit column (read as weight 0)
FORMAT = 3
NGRAM_MAX = 3
_BITS = 21  # every Unicode code point + 1 fits in 21 bits, so a 3-gram fits in 63
_MASK = (1 << _BITS) - 1
# Per category: weights of the model's logit, the rules' raw score, the strongest competing rule score,
# whether a political-legal actor word occurs, the strongest other category's model logit, and a bias.
STACK_COLUMNS = (
    "model_logit", "rules_raw", "competing_rules_raw", "actor_named", "competing_model_logit", "bias"
)  # fmt: skip


def competing_logits(logits: list[float]) -> list[float]:
    """Per category, the highest model logit of the other categories (the best one's is the runner-up)."""
    top = max(logits)
    best = logits.index(top)
    out = [top] * len(logits)
    out[best] = max(logits[:best] + logits[best + 1 :], default=0.0)
    return out


class ModelError(TaxonomyError):
    """The model artifact is missing a part or does not match its checksum. A TaxonomyError, since the
    model is part of what a taxonomy reload puts in force: a bad one keeps the old engine."""


def ngram_keys(text: str) -> np.ndarray:
    """Integer keys of every 1..3-gram of ``text`` (unigrams, then bigrams, then trigrams).

    A key is the code points (+1, so that no n-gram packs to another's key) in 21-bit fields.
    """
    if not text:
        return np.zeros(0, dtype=np.int64)
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64) + 1
    parts = [cp]
    if len(cp) >= 2:
        parts.append((cp[:-1] << _BITS) | cp[1:])
    if len(cp) >= 3:
        parts.append((cp[:-2] << (2 * _BITS)) | (cp[1:-1] << _BITS) | cp[2:])
    return np.concatenate(parts)


@lru_cache(maxsize=1 << 16)  # the explanation asks for the same few thousand strong n-grams again and again
def key_text(key: int) -> str:
    """The n-gram a key stands for (for evidence and for reading the artifact)."""
    chars = []
    key = int(key)
    while key:
        chars.append(chr((key & _MASK) - 1))
        key >>= _BITS
    return "".join(reversed(chars))


def tfidf_row(counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """Sublinear TF times IDF, L2-normalised (training builds its matrix with the same function)."""
    values = (1.0 + np.log(counts)) * idf
    norm = math.sqrt(float(values @ values))
    return values / norm if norm else values


@dataclass(frozen=True, slots=True)
class ModelFeatures:
    """The vocabulary entries found in one text: their indices and TF-IDF values."""

    index: np.ndarray
    values: np.ndarray


# Multiplicative hashing of the 63-bit n-gram keys: odd 64-bit multipliers for bucket and slot, the
# next pair tried when two keys of one bucket share a slot hash.
_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9)  # fmt: skip


@dataclass(frozen=True, slots=True)
class NgramIndex:
    """A perfect hash from vocabulary key to row ("hash and displace"): every key of the vocabulary owns
    one slot, found with two multiplications, one displacement and two gathers, so a report's n-grams are
    looked up in a few vectorised operations instead of a sort and a binary search. A key that is not in
    the vocabulary lands on a slot holding another key's row (or none) and is dropped by comparing the
    row's key with it. The slots hold rows only (the keys are compared in the vocabulary's own order): a
    smaller table, which stays in the cache beside the rules' automaton and regexes."""

    bucket_multiplier: np.uint64
    slot_multiplier: np.uint64
    bucket_shift: np.uint64
    slot_shift: np.uint64
    displacement: np.ndarray  # (buckets,) int32: XOR-ed into the slot hash
    slot_rows: np.ndarray  # (slots,) int32: the row of the key owning the slot; a free slot: the last row
    row_keys: np.ndarray  # (rows + 1,) int64: the vocabulary, then -1 (no key) for the free slots' row

    @classmethod
    def build(cls, vocabulary: np.ndarray) -> NgramIndex:
        for attempt in range(len(_MULTIPLIERS) - 1):  # other multipliers, and every other time more slots
            pair = map(np.uint64, _MULTIPLIERS[attempt : attempt + 2])
            index = cls._build(vocabulary, *pair, extra_bits=attempt // 2)
            if index is not None:
                return index
        raise ModelError("no hash places the model's vocabulary")  # never seen

    @classmethod
    def _build(
        cls, vocabulary: np.ndarray, bucket_multiplier: np.uint64, slot_multiplier: np.uint64, extra_bits: int
    ) -> NgramIndex | None:
        n = len(vocabulary)
        # Small enough to stay in the cache beside the rules' automata (at most 70 % of the slots used,
        # about 1.4 keys per bucket); large enough that every bucket finds a displacement quickly.
        slot_bits = max(4, math.ceil(math.log2(max(n, 1) / 0.7))) + extra_bits
        bucket_bits = slot_bits - 1
        bucket_shift, slot_shift = np.uint64(64 - bucket_bits), np.uint64(64 - slot_bits)
        hashing = (bucket_multiplier, slot_multiplier, bucket_shift, slot_shift)
        unsigned = vocabulary.view(np.uint64)
        buckets = ((unsigned * bucket_multiplier) >> bucket_shift).astype(np.intp)
        hashes = ((unsigned * slot_multiplier) >> slot_shift).astype(np.intp)
        slots = 1 << slot_bits
        displacement = np.zeros(1 << bucket_bits, dtype=np.int32)
        slot_rows = np.full(slots, n, dtype=np.int32)
        row_keys = np.append(vocabulary.astype(np.int64), np.int64(-1))
        if not n:
            return cls(*hashing, displacement, slot_rows, row_keys)
        # Buckets holding several keys, largest first while most slots are free (grouped by sorting);
        # a bucket of one key then takes any free slot.
        order = np.argsort(buckets, kind="stable")
        sorted_buckets = buckets[order]
        starts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1], True])
        sizes = np.diff(starts)
        used = bytearray(slots)
        hash_list = hashes.tolist()
        order_list = order.tolist()
        placed_rows: list[int] = []
        placed_slots: list[int] = []
        for g in np.argsort(-sizes, kind="stable")[: int((sizes > 1).sum())].tolist():
            rows = order_list[starts[g] : starts[g + 1]]
            own = [hash_list[r] for r in rows]
            if len(set(own)) < len(own):
                return None  # two keys of one bucket share a slot hash: try other multipliers
            for d in range(slots):
                if not any(used[h ^ d] for h in own):
                    break
            else:
                return None
            for h in own:
                used[h ^ d] = 1
            placed_rows += rows
            placed_slots += [h ^ d for h in own]
            displacement[sorted_buckets[starts[g]]] = d
        rows_one = order[starts[:-1][sizes == 1]]
        free = np.flatnonzero(np.frombuffer(bytes(used), dtype=np.uint8) == 0)[: len(rows_one)]
        displacement[buckets[rows_one]] = hashes[rows_one] ^ free
        all_rows = np.concatenate([np.array(placed_rows, dtype=np.intp), rows_one])
        all_slots = np.concatenate([np.array(placed_slots, dtype=np.intp), free])
        slot_rows[all_slots] = all_rows
        return cls(*hashing, displacement, slot_rows, row_keys)

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """The vocabulary row of every key that is in the vocabulary (keys not in it are dropped)."""
        unsigned = keys.view(np.uint64)
        slot = ((unsigned * self.slot_multiplier) >> self.slot_shift).astype(np.intp)
        slot ^= self.displacement[((unsigned * self.bucket_multiplier) >> self.bucket_shift).astype(np.intp)]
        rows = self.slot_rows.take(slot)
        return rows[self.row_keys.take(rows) == keys]


@dataclass(frozen=True)
class TriageModel:
    version: str
    classes: tuple[str, ...]
    vocabulary: np.ndarray  # sorted int64 n-gram keys
    idf: np.ndarray  # float64, one per key
    coef: np.ndarray  # (classes, keys) float32: one contiguous row per class
    intercept: np.ndarray  # (classes,) float64
    stack: np.ndarray  # (classes, len(STACK_COLUMNS))
    triage_threshold: float  # below this best probability the report goes to a person
    secondary_threshold: float  # a further misconduct label needs at least this probability
    meta: dict[str, Any]

    @cached_property
    def index(self) -> NgramIndex:
        """Built once per model (about 0.5 s for 160,000 keys): by ``prepare``, when an engine takes it."""
        return NgramIndex.build(self.vocabulary)

    def prepare(self) -> None:
        """Build the lookup structures now, where the model is put in force (a worker's start, a reload),
        not in the first report's time: a restarted server must take reports at once."""
        _ = self.index, self._coef_by_key

    def features(self, text: str) -> ModelFeatures:
        rows = self.index.rows(ngram_keys(text)) if text and len(self.vocabulary) else None
        if rows is None or not len(rows):
            return ModelFeatures(np.zeros(0, dtype=np.intp), np.zeros(0))
        # Sorted rows: counting is a run-length pass (the rows come out in vocabulary order, as before).
        rows.sort()
        n = len(rows)
        bounds = np.empty(n + 1, dtype=bool)  # where a run of equal rows starts, and the end
        bounds[0] = bounds[n] = True
        np.not_equal(rows[1:], rows[:-1], out=bounds[1:n])
        edges = np.flatnonzero(bounds)
        index = rows[edges[:-1]]
        # (np.diff with append= costs ~100 µs per call in its broadcasting; a subtraction of views does not)
        return ModelFeatures(index, tfidf_row(edges[1:] - edges[:-1], self.idf[index]))

    @cached_property
    def _stack_rows(self) -> list[list[float]]:
        return self.stack.tolist()

    @cached_property
    def _coef_by_key(self) -> np.ndarray:
        """(keys, classes): one n-gram's coefficients side by side, so a report's rows are one gather."""
        return np.ascontiguousarray(self.coef.T)

    def weights(self, features: ModelFeatures) -> np.ndarray:
        """(features found, classes): the coefficients of the n-grams found in one text."""
        return self._coef_by_key.take(features.index, axis=0)

    def logits(self, features: ModelFeatures, weights: np.ndarray) -> np.ndarray:
        return (features.values.astype(np.float32) @ weights).astype(np.float64) + self.intercept

    def combine(self, logits: list[float], raw: list[float], rival: list[float], actor: float) -> list[float]:
        """Calibrated probabilities from the model's logits and the rules' raw scores (class order). Plain
        Python: for eleven numbers it is faster than numpy's per-call overhead."""
        out = []
        competing = competing_logits(logits)
        rows = self._stack_rows
        for z, r, q, m, (a, b, d, f, g, e) in zip(logits, raw, rival, competing, rows, strict=True):
            x = a * z + b * r + d * q + f * actor + g * m + e
            out.append(1.0 / (1.0 + math.exp(-min(30.0, max(-30.0, x)))))
        return out

    def strongest(
        self, features: ModelFeatures, weights: np.ndarray, class_rows: list[int], count: int = 3
    ) -> list[list[tuple[str, float]]]:
        """For each class asked for (the labels shown), the ``count`` n-grams that push its logit up most:
        (n-gram, contribution to the logit), strongest first. Only those classes are ranked."""
        # (features found, classes asked for), ranked down each column: one contiguous product, no transpose
        chosen = weights[:, class_rows] * features.values[:, None]
        n = len(chosen)
        if n > count:
            picks = np.argpartition(chosen, n - count, axis=0)[n - count :]
        else:
            picks = np.broadcast_to(np.arange(n)[:, None], (n, len(class_rows)))
        values = chosen[picks, np.arange(len(class_rows))].T.tolist()
        keys = self.vocabulary[features.index[picks]].T.tolist()
        out = []
        for row_values, row_keys in zip(values, keys, strict=True):
            ranked = sorted(zip(row_values, row_keys, strict=True), reverse=True)
            out.append([(key_text(k), v) for v, k in ranked if v > 0])
        return out


# --- The artifact ------------------------------------------------------------------------------------


def artifact_paths(taxonomy_path: Path | str) -> tuple[Path, Path]:
    """``X.json`` -> (``X.model.json``, ``X.model.npz``): the model is shipped beside its taxonomy."""
    path = Path(taxonomy_path)
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return path.with_name(f"{stem}.model.json"), path.with_name(f"{stem}.model.npz")


def history_path(taxonomy_path: Path | str) -> Path:
    """Where every training run's comparison is appended (JSON Lines), beside the artifact."""
    path = Path(taxonomy_path)
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return path.with_name(f"{stem}.model-history.jsonl")


_ARRAYS = ("vocabulary", "idf", "coef", "intercept", "stack")


def encode_arrays(model: TriageModel) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        vocabulary=model.vocabulary.astype(np.int64),
        idf=model.idf.astype(np.float64),
        coef=model.coef.astype(np.float32),  # (classes, keys)
        intercept=model.intercept.astype(np.float64),
        stack=model.stack.astype(np.float64),
    )
    return buffer.getvalue()


def describe(model: TriageModel, arrays_sha256: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": model.version,
        "classes": list(model.classes),
        "ngram_range": [1, NGRAM_MAX],
        "features": int(len(model.vocabulary)),
        "triage_threshold": model.triage_threshold,
        "secondary_threshold": model.secondary_threshold,
        "stack_columns": list(STACK_COLUMNS),
        "arrays_sha256": arrays_sha256,
        **model.meta,
    }


def load_model(taxonomy_path: Path | str) -> TriageModel | None:
    """The model beside ``taxonomy_path``, or None when there is none (rules only). A broken or
    tampered artifact raises ModelError: a reload then keeps the engine in force."""
    meta_path, arrays_path = artifact_paths(taxonomy_path)
    if not meta_path.exists() and not arrays_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        blob = arrays_path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelError(f"model artifact incomplete: {exc.filename} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"model description {meta_path} is not valid JSON: line {exc.lineno}") from exc
    return parse_model(meta, blob, source=str(meta_path))


def parse_model(meta: Any, blob: bytes, *, source: str = "<model>") -> TriageModel:
    import io

    if not isinstance(meta, dict) or meta.get("format") not in (1, 2, FORMAT):
        raise ModelError(f"{source}: unknown model format (expected format {FORMAT})")
    if hashlib.sha256(blob).hexdigest() != meta.get("arrays_sha256"):
        raise ModelError(f"{source}: the arrays file does not match arrays_sha256")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ModelError(f"{source}: 'classes' must be a non-empty list of category ids")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            data = {name: arrays[name] for name in _ARRAYS}
    except (KeyError, ValueError, OSError) as exc:
        raise ModelError(f"{source}: unreadable arrays: {exc}") from exc
    if meta["format"] == 1:  # (keys, classes) coefficients and no actor column
        data["coef"] = data["coef"].T
        if data["stack"].ndim == 2 and data["stack"].shape[1] == 4:
            data["stack"] = np.insert(data["stack"], 3, 0.0, axis=1)
    if meta["format"] in (1, 2) and data["stack"].ndim == 2 and data["stack"].shape[1] == 5:
        data["stack"] = np.insert(data["stack"], 4, 0.0, axis=1)  # no competing_model_logit column
    features, width = len(data["vocabulary"]), len(classes)
    shapes_ok = (
        data["vocabulary"].dtype == np.int64
        and data["idf"].shape == (features,)
        and data["coef"].shape == (width, features)
        and data["intercept"].shape == (width,)
        and data["stack"].shape == (width, len(STACK_COLUMNS))
        and bool(np.all(np.diff(data["vocabulary"]) > 0))
    )
    if not shapes_ok:
        raise ModelError(f"{source}: arrays do not fit together (vocabulary sorted, one column per class)")
    thresholds = [meta.get("triage_threshold"), meta.get("secondary_threshold")]
    if not all(isinstance(t, int | float) and 0 <= t <= 1 for t in thresholds):
        raise ModelError(f"{source}: thresholds must be numbers between 0 and 1")
    known = {"format", "version", "classes", "triage_threshold", "secondary_threshold", "arrays_sha256"}
    return TriageModel(
        version=str(meta.get("version", "")),
        classes=tuple(classes),
        vocabulary=data["vocabulary"],
        idf=data["idf"].astype(np.float64),
        coef=np.ascontiguousarray(data["coef"], dtype=np.float32),
        intercept=data["intercept"].astype(np.float64),
        stack=data["stack"].astype(np.float64),
        triage_threshold=float(thresholds[0]),
        secondary_threshold=float(thresholds[1]),
        meta={k: v for k, v in meta.items() if k not in known},
    )
