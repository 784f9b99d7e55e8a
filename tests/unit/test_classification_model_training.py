"""Training the learned model (scikit-learn side): NB-SVM scaling folds into the coefficients."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import sparse

from service.classification import training

CLASSES = ("a", "b", "other")
TEXTS = [
    ("法官收钱插手案件", ["a"]), ("法官打招呼干预案件", ["a"]), ("插手案件的法官", ["a"]),
    ("放高利贷的警察", ["b"]), ("警察放贷收利息", ["b"]), ("高利贷警察入股", ["b"]),
    ("路灯坏了没人修", ["other"]), ("小区停车难", ["other"]), ("噪音扰民", ["other"]),
    ("法官放高利贷", ["a", "b"]),
]  # fmt: skip


def _batch() -> list[training.Example]:
    items = [{"text": t, "labels": labels, "writer": f"w{i % 3}"} for i, (t, labels) in enumerate(TEXTS)]
    return training.examples(items)


def test_log_count_ratios_are_smoothed_presence_ratios_per_category():
    x = sparse.csr_matrix(np.array([[0.5, 0.0, 0.2], [0.0, 0.7, 0.1], [0.3, 0.3, 0.0]]))
    y = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int8)
    r = training.log_count_ratios(x, y, alpha=1.0)
    # category 0: in its reports (0, 2) the features occur 2, 1, 1 times; in the others' (1): 0, 1, 1
    p, q = np.array([3.0, 2.0, 2.0]), np.array([1.0, 2.0, 2.0])
    assert r[0] == pytest.approx(np.log(p / p.sum()) - np.log(q / q.sum()))
    p, q = np.array([2.0, 3.0, 2.0]), np.array([2.0, 1.0, 2.0])
    assert r[1] == pytest.approx(np.log(p / p.sum()) - np.log(q / q.sum()))


def test_nb_scaling_folds_into_the_coefficients_the_model_multiplies():
    from sklearn.linear_model import LogisticRegression

    batch = _batch()
    params = replace(training.Params(), min_df=1, nb_weight=1.0, nb_alpha=1.0, nb_c=2.0)
    base = training._fit_base(batch, CLASSES, params)
    vocabulary, idf, _, _ = base
    x = training._matrix(batch, vocabulary, idf)
    y = training._targets(batch, CLASSES)
    r = training.log_count_ratios(x, y, 1.0)
    logits = training._logits(batch, base)  # the model's own features times the folded coefficients
    for j in range(len(CLASSES)):
        lr = LogisticRegression(C=2.0, class_weight=params.class_weight, solver="liblinear")
        lr.fit(sparse.csr_matrix(x.multiply(r[j])), y[:, j])
        assert logits[:, j] == pytest.approx(lr.decision_function(x.multiply(r[j]).tocsr()), abs=1e-9)


def test_the_blend_is_one_coefficient_matrix_weighted_between_the_plain_and_the_scaled_regression():
    batch = _batch()
    params = replace(training.Params(), min_df=1, nb_alpha=1.0, nb_c=None)  # the scaled one: C = c
    plain = training._fit_base(batch, CLASSES, replace(params, nb_weight=0.0))
    scaled = training._fit_base(batch, CLASSES, replace(params, nb_weight=1.0))
    blend = training._fit_base(batch, CLASSES, replace(params, nb_weight=0.25))
    assert not np.allclose(plain[2], scaled[2])
    assert blend[2] == pytest.approx(0.75 * plain[2] + 0.25 * scaled[2], abs=1e-12)
    assert blend[3] == pytest.approx(0.75 * plain[3] + 0.25 * scaled[3], abs=1e-12)
    # The scaled regression's own C, when given, is used for it alone.
    other_c = training._fit_base(batch, CLASSES, replace(params, nb_weight=0.25, nb_c=0.5))
    scaled_c = training._fit_base(batch, CLASSES, replace(params, nb_weight=1.0, c=0.5))
    assert other_c[2] == pytest.approx(0.75 * plain[2] + 0.25 * scaled_c[2], abs=1e-12)
