"""The ``tipline`` command line: one command group per domain (``service/cli/<group>.py``), each with
``add_parsers(sub)`` and ``COMMANDS``; this module parses, loads the settings once and dispatches."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys

from service.classification import classifier
from service.cli import audit, auth, classification, custody, db, handoff, registry, server
from service.cli.classify import run as run_classify
from service.platform.crypto.keys import KeyFileError
from service.platform.errors import DomainError
from service.platform.migrations import SchemaOutOfDate
from service.platform.settings import SettingsError, load_settings

GROUPS = (server, db, audit, auth, custody, classification, registry, handoff)
COMMANDS = {name: handler for group in GROUPS for name, handler in group.COMMANDS.items()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tipline", description="Tipline: tip intake and clue registry")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    sub.add_parser(
        "classify", help="classify JSON Lines from stdin (see --help of the subcommand)", add_help=False
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    classifier.set_configured_path(settings.taxonomy_path)  # loaded when first used
    if argv[:1] == ["classify"]:
        return run_classify(argv[1:], sys.stdin, sys.stdout)
    args = _parser().parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        if inspect.iscoroutinefunction(handler):
            return asyncio.run(handler(args, settings))
        return handler(args, settings)
    except DomainError as exc:
        print(f"tipline: {exc.message_en}", file=sys.stderr)
        return 1
    except (SchemaOutOfDate, KeyFileError) as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
