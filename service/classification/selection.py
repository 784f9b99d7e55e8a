"""Choosing the model's settings without the test split: leave-one-writer-out over the training and dev
writers (scikit-learn; for ``tipline classify train``'s parameters, never run by the service).

Every writer's reports are scored by a base model trained without that writer; the stacking weights that
turn a writer's scores into probabilities are fitted on the other writers' out-of-writer scores. So every
figure printed is for reports from a writer the model did not see, as the test split is — but the test
split itself is never used (only checked against its hash, as every load of the corpus does).

    python -m service.classification.selection [--corpus DIR] [--extra NAME=FILE[,FILE]] [--c 8 128]
        [--stack-c 0.1 1] [--nb-weight 0 0.3] [--nb-c 32] [--nb-alpha 1] [--class-weight balanced none] ...

Prints, per setting, the macro-F1 of each held-out writer, their mean, and the best thresholds on the
pooled out-of-writer probabilities.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from service.classification import training
from service.classification.corpus import DEFAULT_CORPUS_DIR, load_corpus, read_labelled
from service.classification.engine import Engine
from service.classification.evaluation import evaluate
from service.classification.results import OTHER
from service.classification.taxonomy import load_taxonomy


@dataclass(frozen=True)
class OutOfWriter:
    """Out-of-writer probabilities for every report of every writer, under one setting."""

    groups: list[str]
    probabilities: np.ndarray  # (reports, classes)
    gold: list[list[str]]


def decide(p: Sequence[float], classes: Sequence[str], triage: float, secondary: float) -> list[str]:
    """The engine's decision rule (``Engine._combine``) on one report's probabilities."""
    best = int(np.argmax(p))
    if p[best] < triage:
        return []
    if classes[best] == OTHER:
        return [OTHER]
    more = [j for j, c in enumerate(classes) if c != OTHER and j != best and p[j] >= secondary]
    return [classes[best], *(classes[j] for j in sorted(more, key=lambda j: -p[j]))]


def out_of_writer(
    batch: Sequence[training.Example],
    classes: Sequence[str],
    params: training.Params,
    rules: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> OutOfWriter:
    groups = [e.group for e in batch]
    z = training._out_of_group_logits(batch, classes, params)
    raw, rival, actor = rules
    y = training._targets(batch, classes)
    probabilities = np.zeros_like(z)
    for group in sorted(set(groups)):
        held = np.array([g == group for g in groups])
        stack = training._fit_stack(z[~held], raw[~held], rival[~held], actor[~held], y[~held], params)
        a, b, d, f, g, e = (stack[:, k] for k in range(stack.shape[1]))
        m = training.competing_logits(z[held])
        x = a * z[held] + b * raw[held] + d * rival[held] + f * actor[held][:, None] + g * m + e
        probabilities[held] = 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))
    return OutOfWriter(groups, probabilities, [e.labels for e in batch])


def scores(
    result: OutOfWriter, classes: Sequence[str], triage: float, secondary: float, extra: Sequence[str] = ()
) -> dict[str, float]:
    """Macro-F1 of each held-out writer, and their mean."""
    predicted = [decide(p, classes, triage, secondary) for p in result.probabilities]
    out = {}
    for group in sorted(set(result.groups)):
        pairs = [(g, p) for g, p, w in zip(result.gold, predicted, result.groups, strict=True) if w == group]
        out[group] = evaluate(pairs).macro_f1
    # The mean is over the corpus's writers; an --extra set (the project's own, which the rules were
    # tuned on) is trained on and shown, not averaged.
    out["mean"] = float(np.mean([v for k, v in out.items() if k not in extra]))
    return out


def triage_figures(result: OutOfWriter, classes: Sequence[str], triage: float) -> tuple[float, float]:
    """Share of reports sent to a person, and how often their best guess was wrong."""
    best = result.probabilities.argmax(axis=1)
    sent = result.probabilities.max(axis=1) < triage
    wrong = [classes[b] not in gold for b, gold in zip(best, result.gold, strict=True)]
    rate = float(sent.mean())
    precision = float(np.mean([w for w, s in zip(wrong, sent, strict=True) if s])) if sent.any() else 0.0
    return rate, precision


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=DEFAULT_CORPUS_DIR)
    parser.add_argument("--taxonomy", help="the taxonomy whose rules are stacked (default: configured)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=FILE[,FILE]")
    parser.add_argument("--c", type=float, nargs="+", default=[training.Params.c])
    parser.add_argument("--min-df", type=int, nargs="+", default=[training.Params.min_df])
    parser.add_argument("--stack-c", type=float, nargs="+", default=[training.Params.stack_c])
    parser.add_argument("--nb-weight", type=float, nargs="+", default=[training.Params.nb_weight],
                        help="weight of the NB-SVM-scaled regression in the base (0: none)")  # fmt: skip
    parser.add_argument("--nb-c", type=float, nargs="+", default=[training.Params.nb_c],
                        help="the scaled regression's C (default: --c)")  # fmt: skip
    parser.add_argument("--nb-alpha", type=float, default=training.Params.nb_alpha)
    parser.add_argument("--class-weight", nargs="+", default=[training.Params.class_weight or "none"],
                        choices=["balanced", "none"])  # fmt: skip
    parser.add_argument("--triage", type=float, nargs="+", default=[0.1, 0.15, 0.2])
    parser.add_argument("--secondary", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    args = parser.parse_args(argv)
    taxonomy = load_taxonomy(args.taxonomy)
    classes = tuple(taxonomy.category_ids)
    corpus = load_corpus(args.corpus, classes)
    batch = training.examples(corpus.splits["train"]) + training.examples(corpus.splits["dev"])
    for spec in args.extra:
        name, _, files = spec.partition("=")
        for path in files.split(","):
            batch += training.examples(read_labelled(path, classes), group=name)
    engine = Engine(taxonomy)
    rules = training._rules(engine, batch, classes)
    writers = sorted({e.group for e in batch})
    print(f"{len(batch)} reports, writers {', '.join(writers)} (the test split is never read)")
    for c, min_df, stack_c, nb_weight, nb_c, weight in itertools.product(
        args.c, args.min_df, args.stack_c, args.nb_weight, args.nb_c, args.class_weight
    ):
        params = replace(
            training.Params(), c=c, min_df=min_df, stack_c=stack_c, nb_weight=nb_weight, nb_c=nb_c,
            nb_alpha=args.nb_alpha, class_weight=None if weight == "none" else weight,
        )  # fmt: skip
        result = out_of_writer(batch, classes, params, rules)
        grid = []
        for triage, secondary in itertools.product(args.triage, args.secondary):
            figures = scores(result, classes, triage, secondary, [s.partition("=")[0] for s in args.extra])
            grid.append((figures, triage, secondary))
        grid.sort(key=lambda item: -item[0]["mean"])
        for figures, triage, secondary in grid[:3]:
            rate, wrong = triage_figures(result, classes, triage)
            per_writer = " ".join(f"{w}={figures[w]:.3f}" for w in writers)
            print(
                f"c={c} min_df={min_df} stack_c={stack_c} nb_weight={nb_weight} nb_c={nb_c}"
                f" nb_alpha={args.nb_alpha} class_weight={weight}"
                f" triage={triage} secondary={secondary}:"
                f" mean {figures['mean']:.4f}"
                f" [{per_writer}] triage rate {rate:.3f}, best guess wrong {wrong:.2f}"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
