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
    from service.app.runtime import build_runtime
    from service.classification import service as classification_service
    from service.platform.migrations import ensure_schema

    runtime = build_runtime(settings, frozenset({"staff"}))
    handle: IO[str] = stdout
    try:
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
        + (f"; {report.skipped} skipped (labels not in the taxonomy in force)" if report.skipped else ""),
        file=sys.stderr,
    )
    return 0


COMMANDS = {"taxonomy": taxonomy_command}
