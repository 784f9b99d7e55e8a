"""``tipline classify``: JSON Lines in, JSON Lines out; ``--eval FILE`` prints P/R/F1 and macro-F1.

``tipline classify export-corrections [--out FILE]`` writes staff corrections in the ``--eval`` format.
``tipline classify train [--corrections FILE]`` trains the model (``service/classification/training.py``).

Input lines: {"id": ..., "text": ..., "category_hint"?: ...}. Output, one line per input and in order:
{"id", "labels", "needs_triage", "scores", "evidence", "taxonomy_version"}. A line that cannot be parsed
yields {"id": null, "error": ...} and exit status 1 at the end; the text itself is never echoed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from service.classification import classifier
from service.classification.evaluation import evaluate
from service.classification.taxonomy import TaxonomyError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tipline classify", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--eval",
        metavar="FILE",
        action="append",
        help="labelled JSONL ({id, text, labels}) to score; repeat to add e.g. exported staff corrections",
    )
    return parser


def run(argv: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    if argv[:1] == ["export-corrections"]:  # staff side: needs the database and the case private key
        from service.cli.classification import export_corrections

        return export_corrections(argv[1:], stdout)
    if argv[:1] == ["train"]:  # writes the model beside the taxonomy; audited, so needs the database
        from service.cli.classification import train

        return train(argv[1:], stdout)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        classifier.current_taxonomy()
    except TaxonomyError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.eval:
        return _run_eval(args.eval, stdout)
    return _run_batch(stdin, stdout)


def _run_batch(stdin: IO[str], stdout: IO[str]) -> int:
    status = 0
    for line_number, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text = item["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            status = 1
            reason = type(exc).__name__
            stdout.write(json.dumps({"id": None, "line": line_number, "error": reason}) + "\n")
            continue
        hint = item.get("category_hint")
        result = classifier.classify(text, category_hint=hint if isinstance(hint, str) else None)
        stdout.write(json.dumps({"id": item.get("id"), **result.to_dict()}, ensure_ascii=False) + "\n")
    stdout.flush()
    return status


def _run_eval(paths: list[str], stdout: IO[str]) -> int:
    pairs: list[tuple[list[str], list[str]]] = []
    for path in paths:
        status = _score_file(path, pairs)
        if status:
            return status
    report = evaluate(pairs)
    stdout.write("\n".join(report.lines()) + "\n")
    stdout.flush()
    return 0


def _score_file(path: str, pairs: list[tuple[list[str], list[str]]]) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                item = json.loads(line)
                if not isinstance(item.get("text"), str) or not isinstance(item.get("labels"), list):
                    print(f"{path}:{line_number}: needs string 'text' and list 'labels'", file=sys.stderr)
                    return 2
                hint = item.get("category_hint")
                result = classifier.classify(
                    item["text"], category_hint=hint if isinstance(hint, str) else None
                )
                pairs.append((item["labels"], result.labels))
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"{path}: invalid JSON at line {exc.lineno}", file=sys.stderr)
        return 2
    return 0


def main() -> None:
    raise SystemExit(run(sys.argv[1:], sys.stdin, sys.stdout))


if __name__ == "__main__":
    main()
