"""The ``tipline`` command line: one command group per domain (``service/cli/<group>.py``), each with
``add_parsers(sub)`` and ``COMMANDS``; this module parses, loads the settings once and dispatches."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys

from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from service.classification import classifier
from service.cli import (
    attachments,
    audit,
    auth,
    classification,
    compartments,
    custody,
    db,
    handoff,
    registry,
    server,
)
from service.cli.classify import run as run_classify
from service.platform.crypto.keys import KeyFileError
from service.platform.db import private_directory
from service.platform.errors import DomainError
from service.platform.migrations import SchemaOutOfDate
from service.platform.settings import Settings, SettingsError, load_settings

GROUPS = (server, db, audit, auth, custody, compartments, classification, registry, handoff, attachments)
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
    if settings.data_dir.is_dir():
        private_directory(settings.data_dir)  # 0700 whatever the umask (the database may be made here)
    classifier.set_configured_path(settings.taxonomy_path)  # loaded when first used
    if argv[:1] == ["classify"]:
        return run_classify(argv[1:], sys.stdin, sys.stdout)
    args = _parser().parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        _make_data_dir(settings)
        if inspect.iscoroutinefunction(handler):
            return asyncio.run(handler(args, settings))
        return handler(args, settings)
    except DomainError as exc:
        print(f"tipline: {exc.message_en}", file=sys.stderr)
        return 1
    except SchemaOutOfDate as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    except KeyFileError as exc:
        print(f"tipline: {exc}{_key_hint(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, not a traceback
        print(f"tipline: {_one_line(exc)}", file=sys.stderr)
        logging.getLogger("tipline.cli").debug("failed", exc_info=True)
        return 1


def _make_data_dir(settings: Settings) -> None:
    """A fresh data directory is made on first use (owner only), whichever command comes first."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _key_hint(exc: KeyFileError) -> str:
    text = str(exc)
    if "not found" in text or "is missing" in text:
        return (
            "; run `tipline keys init --custodian NAME …` first "
            "(in development `tipline serve` makes development keys on its first start)"
        )
    return ""


def _one_line(exc: BaseException) -> str:
    """What went wrong and, where we know it, what to run first. Only the exception's first line: a driver's
    message can run to pages (SQL, parameters), which the operator does not need."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        return f"cannot reach the database ({reason}); check TIPLINE_DATABASE_URL / TIPLINE_DATA_DIR"
    if isinstance(exc, ProgrammingError):
        return "the database schema does not match this version: run `tipline db upgrade` first"
    text = (str(exc).splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
