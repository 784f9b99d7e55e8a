"""``tipline classify export-corrections`` and ``tipline taxonomy validate|reload``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any

CLI_ACTOR = "cli"


def add_parsers(sub: Any) -> None:
    taxonomy = sub.add_parser("taxonomy", help="the classification taxonomy").add_subparsers(
        dest="taxonomy_command", required=True
    )
    validate = taxonomy.add_parser("validate", help="check a taxonomy file; exit 1 listing every problem")
    validate.add_argument("file", type=Path)
    taxonomy.add_parser(
        "reload",
        help="load the configured file (TIPLINE_TAXONOMY_PATH) in THIS process only; running servers "
        "reload on start or with POST /api/v1/taxonomy/reload",
    )


async def taxonomy_command(args: argparse.Namespace, settings: Any) -> int:
    from service.classification import classifier
    from service.classification.model import load_model

    try:
        if args.taxonomy_command == "validate":
            taxonomy = classifier.validate_taxonomy_file(args.file)
        else:
            taxonomy = classifier.reload_taxonomy(settings.taxonomy_path)
    except classifier.TaxonomyError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"tipline: cannot read the taxonomy file: {exc.strerror}", file=sys.stderr)
        return 1
    counts = f"{len(taxonomy.categories)} categories, {sum(len(c.terms) for c in taxonomy.categories)} terms"
    learned = load_model(taxonomy.source) if taxonomy.source else None
    counts += f", model {learned.version}" if learned else ", no model beside it (rules only)"
    if args.taxonomy_command == "validate":
        print(f"valid: version {taxonomy.version}, {counts}")
    else:
        print(
            f"loaded version {taxonomy.version} ({counts}) from {taxonomy.source} in this process only; "
            "each server process loads it when it starts, or reloads it with POST /api/v1/taxonomy/reload"
        )
    return 0


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tipline classify export-corrections",
        description="Write staff corrections as labelled JSON Lines {id, text, labels} (masked text) for "
        "`tipline classify --eval`. Needs the case private key; audited.",
    )
    parser.add_argument("--out", type=Path, help="file to write (created 0600); default: standard output")
    return parser


def export_corrections(argv: list[str], stdout: IO[str]) -> int:
    import asyncio

    from service.platform.crypto.keys import KeyFileError
    from service.platform.settings import SettingsError, load_settings

    try:
        args = _export_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_export(args, settings, stdout))
    except KeyFileError as exc:
        print(f"tipline: the export needs the case private key: {exc}", file=sys.stderr)
        return 2


async def _export(args: argparse.Namespace, settings: Any, stdout: IO[str]) -> int:
    from service.app.runtime import build_runtime, require_case_key
    from service.classification import service as classification_service
    from service.platform.migrations import ensure_schema

    runtime = build_runtime(settings, frozenset({"staff"}))
    handle: IO[str] = stdout
    try:
        require_case_key(settings, runtime.keys)
        await ensure_schema(runtime.engine, auto_upgrade=False)
        if args.out is not None:
            # The masked text is still report content: owner-only, never world-readable.
            descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            handle = os.fdopen(descriptor, "w", encoding="utf-8")
        async with runtime.session_factory() as session:
            report = await classification_service.export_corrections(
                session, keys=runtime.keys, actor=CLI_ACTOR, write=handle.write
            )
            await session.commit()
    finally:
        if handle is not stdout:
            handle.close()
        await runtime.close()
    where = args.out if args.out is not None else "standard output"
    print(
        f"exported {report.rows} corrected clue(s) to {where}"
        + (f"; {report.skipped} skipped (labels not in the taxonomy in force)" if report.skipped else "")
        + (
            f"; {report.compartmented} not exported (registered since compartments: only a person's key"
            " opens them)"
            if report.compartmented
            else ""
        ),
        file=sys.stderr,
    )
    return 0


COMMANDS = {"taxonomy": taxonomy_command}


# --- tipline classify train --------------------------------------------------------------------------

NOT_PUT_IN_FORCE = 3  # exit status: trained and compared, but worse on the test split than the one in force


def _train_parser() -> argparse.ArgumentParser:
    from service.classification.training import Params  # scikit-learn: loaded for this command only

    parser = argparse.ArgumentParser(
        prog="tipline classify train",
        description="Train the character n-gram model on the corpus's training split (and exported staff "
        "corrections), compare it with the model in force on the frozen test split, and put it in force "
        "beside the taxonomy only if it is not worse. The comparison is appended to "
        "<taxonomy>.model-history.jsonl and audited (classification.model_trained). "
        f"Exit 0: put in force; {NOT_PUT_IN_FORCE}: kept the one in force; 2: bad input.",
    )
    parser.add_argument("--corpus", type=Path, help="folder with manifest.json (default: the repository's)")
    parser.add_argument(
        "--corrections",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="exported staff corrections (tipline classify export-corrections); repeatable",
    )
    parser.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="further labelled training data, one more writer each (the project's own sets); repeatable",
    )
    parser.add_argument(
        "--taxonomy", type=Path, help="the taxonomy the model is for, written beside it (default: configured)"
    )
    defaults = Params()
    parser.add_argument("--min-df", type=int, default=defaults.min_df, help="keep n-grams seen in N reports")
    parser.add_argument("--c", type=float, default=defaults.c, help="inverse regularisation")
    parser.add_argument(
        "--nb-weight",
        type=float,
        default=defaults.nb_weight,
        help="weight of the NB-SVM-scaled regression blended into the base model (0: none)",
    )
    parser.add_argument(
        "--nb-c", type=float, default=defaults.nb_c, help="inverse regularisation of the scaled regression"
    )
    parser.add_argument(
        "--triage-threshold",
        type=float,
        default=defaults.triage_threshold,
        help="a report whose best calibrated probability is below this goes to a person (chosen on dev)",
    )
    parser.add_argument(
        "--secondary-threshold",
        type=float,
        default=defaults.secondary_threshold,
        help="probability a further misconduct label needs",
    )
    return parser


def train(argv: list[str], stdout: IO[str]) -> int:
    from service.platform.settings import SettingsError, load_settings

    try:
        args = _train_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    thresholds = (args.triage_threshold, args.secondary_threshold)
    inverse_regularisation = (args.c, args.c if args.nb_c is None else args.nb_c)
    if (
        args.min_df < 1
        or not all(0 < c <= 1000 for c in inverse_regularisation)
        or not all(0 <= t <= 1 for t in (*thresholds, args.nb_weight))
    ):
        print(
            "tipline: --min-df must be at least 1, --c and --nb-c between 0 and 1000, --nb-weight and the"
            " thresholds between 0 and 1",
            file=sys.stderr,
        )
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    return _train(args, settings, stdout)


def _train(args: argparse.Namespace, settings: Any, stdout: IO[str]) -> int:
    import asyncio
    import hashlib
    import json
    from datetime import UTC, datetime

    from service.classification import model as model_artifact
    from service.classification import training
    from service.classification.corpus import CorpusError, load_corpus, read_labelled
    from service.classification.engine import Engine
    from service.classification.taxonomy import TaxonomyError, configured_taxonomy_path, load_taxonomy

    taxonomy_path = args.taxonomy or settings.taxonomy_path or configured_taxonomy_path()
    try:
        taxonomy = load_taxonomy(taxonomy_path)
        in_force_model = model_artifact.load_model(taxonomy_path)
        corpus = load_corpus(args.corpus, taxonomy.category_ids)
        corrections = [read_labelled(path, taxonomy.category_ids) for path in args.corrections]
        extra = [read_labelled(path, taxonomy.category_ids) for path in args.extra]
    except (TaxonomyError, CorpusError) as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    params = training.Params(
        min_df=args.min_df,
        c=args.c,
        nb_weight=args.nb_weight,
        nb_c=args.nb_c,
        triage_threshold=args.triage_threshold,
        secondary_threshold=args.secondary_threshold,
    )
    batch = training.examples(corpus.splits["train"])
    for path, items in zip(args.extra, extra, strict=True):
        batch += training.examples(items, group=f"extra:{path.name}")
    for path, items in zip(args.corrections, corrections, strict=True):
        batch += training.examples(items, group=f"corrections:{path.name}")
    provenance = {
        "train_files": corpus.manifest["splits"]["train"],
        "train_reports": len(corpus.splits["train"]),
        "extra": [
            {"file": path.name, "rows": len(items), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            for path, items in zip(args.extra, extra, strict=True)
        ],
        "corrections": [
            {"rows": len(items), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            for path, items in zip(args.corrections, corrections, strict=True)
        ],
    }
    candidate = training.train_candidate(
        taxonomy,
        batch,
        params,
        {
            "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "training": provenance,
            "params": {
                "min_df": params.min_df,
                "c": params.c,
                "nb_weight": params.nb_weight,
                "nb_alpha": params.nb_alpha,
                "nb_c": params.nb_c,
                "class_weight": params.class_weight,
                "stack_c": params.stack_c,
                "triage_threshold": params.triage_threshold,
                "secondary_threshold": params.secondary_threshold,
            },
            "test_sha256": corpus.test_sha256,
        },
    )
    comparison = training.compare(
        Engine(taxonomy, model=candidate),
        Engine(taxonomy, model=in_force_model),
        corpus.splits["test"],
        corpus.splits["dev"],
    )
    comparison.update(
        at=candidate.meta["trained_at"],
        taxonomy_version=taxonomy.version,
        test_sha256=corpus.test_sha256,
        training=provenance,
    )
    # Audited first: a model is only put in force once the audit entry is committed.
    status = asyncio.run(_audit_training(settings, comparison))
    if status:
        return status
    meta_path, arrays_path = model_artifact.artifact_paths(taxonomy_path)
    if comparison["accepted"]:
        blob = model_artifact.encode_arrays(candidate)
        meta = model_artifact.describe(candidate, hashlib.sha256(blob).hexdigest())
        meta["accepted_on"] = {
            "test_macro_f1": comparison["test_macro_f1"]["candidate"],
            "dev_macro_f1": comparison["dev_macro_f1"],
            "test_sha256": corpus.test_sha256,
        }
        _replace(arrays_path, blob)
        _replace(meta_path, (json.dumps(meta, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    with open(model_artifact.history_path(taxonomy_path), "a", encoding="utf-8") as history:
        history.write(json.dumps(comparison, ensure_ascii=False, sort_keys=True) + "\n")
    f1 = comparison["test_macro_f1"]
    stdout.write(
        f"candidate {comparison['candidate']}: test macro-F1 {f1['candidate']:.3f} "
        f"(in force {comparison['in_force']}: {f1['in_force']:.3f}), dev macro-F1 "
        f"{comparison['dev_macro_f1']:.3f}, dev-test gap {comparison['dev_test_gap']:+.3f}\n"
    )
    if comparison["accepted"]:
        stdout.write(f"put in force: {meta_path} and {arrays_path.name} (running processes: reload)\n")
        return 0
    stdout.write("not put in force: worse on the frozen test split than the model in force\n")
    return NOT_PUT_IN_FORCE


def _replace(path: Path, data: bytes) -> None:
    """Write beside, then rename: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


async def _audit_training(settings: Any, comparison: dict[str, Any]) -> int:
    from service.app.runtime import build_runtime
    from service.classification import service as classification_service
    from service.platform.migrations import SchemaOutOfDate, ensure_schema

    runtime = build_runtime(settings, frozenset())
    try:
        await ensure_schema(runtime.engine, auto_upgrade=False)
        async with runtime.session_factory() as session:
            await classification_service.record_model_training(
                session, actor=CLI_ACTOR, comparison=comparison
            )
            await session.commit()
    except SchemaOutOfDate as exc:
        print(f"tipline: the training run must be audited: {exc}", file=sys.stderr)
        return 2
    finally:
        await runtime.close()
    return 0
