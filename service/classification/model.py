"""Optional statistical model: character n-grams with one-vs-rest logistic regression (scikit-learn).

OFF by default. It is trained at load time from labelled JSON Lines (the dev set, exported staff
corrections) and only adds evidence to the rules: ``raw[c] += weight * max(0, 2p - 1)``, so a confident
model can place a report the rules missed, but cannot remove a rule's label. It loads nothing from
the internet. Enable it only if ``python -m service.classification.model --cv FILE`` shows that the combined
macro-F1 does not drop below the rules' own under cross-validation.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.classification.engine import Engine
from service.classification.evaluation import evaluate
from service.classification.normalize import SEPARATOR, normalize
from service.classification.taxonomy import load_taxonomy

DEFAULT_WEIGHT = 1.0


class CharNgramModel:
    def __init__(self, texts: Sequence[str], labels: Sequence[Sequence[str]], categories: Sequence[str]):
        # Imported here so that the service does not need scikit-learn unless the model is switched on.
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import MultiLabelBinarizer

        self._binarizer = MultiLabelBinarizer(classes=list(categories))
        targets = self._binarizer.fit_transform([[c for c in ls if c in categories] for ls in labels])
        keep = targets.sum(axis=0) > 0
        self._categories = [c for c, k in zip(categories, keep, strict=True) if k]
        self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
        features = self._vectorizer.fit_transform([_prepare(t) for t in texts])
        self._classifier = OneVsRestClassifier(
            LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
        )
        self._classifier.fit(features, targets[:, keep])

    def probabilities(self, text: str) -> dict[str, float]:
        row = self._classifier.predict_proba(self._vectorizer.transform([_prepare(text)]))[0]
        return {c: float(p) for c, p in zip(self._categories, row, strict=True)}


def _prepare(text: str) -> str:
    return normalize(text).text.replace(SEPARATOR, " ")


def load_labelled(paths: Sequence[Path | str]) -> list[dict[str, Any]]:
    items = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            items.extend(json.loads(line) for line in handle if line.strip())
    return items


def train(items: Sequence[dict[str, Any]], categories: Sequence[str]) -> CharNgramModel:
    return CharNgramModel([i["text"] for i in items], [i["labels"] for i in items], categories)


def cross_validate(items: list[dict[str, Any]], *, folds: int = 5, weights=(0.5, 1.0, 2.0), seed: int = 3):
    """Macro-F1 of the rules alone and of rules+model for each weight, over the same folds."""

    taxonomy = load_taxonomy()
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    rules = Engine(taxonomy)
    combined = {w: Engine(taxonomy, model_weight=w) for w in weights}
    pairs: dict[Any, list] = {"rules": [], **{w: [] for w in weights}}
    for fold in range(folds):
        test = [items[i] for n, i in enumerate(order) if n % folds == fold]
        train_items = [items[i] for n, i in enumerate(order) if n % folds != fold]
        model = train(train_items, taxonomy.category_ids)
        for engine in combined.values():
            engine.model = model
        for item in test:
            pairs["rules"].append((item["labels"], rules.classify(item["text"]).labels))
            for w, engine in combined.items():
                pairs[w].append((item["labels"], engine.classify(item["text"]).labels))
    return {key: evaluate(value).macro_f1 for key, value in pairs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cross-validate the optional character n-gram model")
    parser.add_argument("--cv", metavar="FILE", action="append", required=True)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    results = cross_validate(load_labelled(args.cv), folds=args.folds)
    for key, value in results.items():
        name = "rules only" if key == "rules" else f"rules + model (weight {key})"
        print(f"{name:<32} macro-F1: {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
