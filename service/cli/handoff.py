"""`tipline dossier`: export a handed-off clue's signed dossier, and verify one (the receiver's check).

``verify`` needs no database and no settings beyond the defaults: a receiving organ runs it on its own
machine with the registry's public signing key (``audit-signing[.national].public.json``) handed over apart
from the dossier. ``export`` acts as a staff member: it reads that person's API token from standard input
(never from the command line, which other users of the machine can see), so permissions and the audit
entry are theirs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parsers(sub: Any) -> None:
    dossier = sub.add_parser("dossier", help="hand-off dossiers").add_subparsers(
        dest="dossier_command", required=True
    )
    export = dossier.add_parser(
        "export", help="export a transferred or sent-on clue's signed dossier (staff API token on stdin)"
    )
    export.add_argument("clue", help="registry number (e.g. LG-2026-000042) or clue id")
    export.add_argument("--out", type=Path, required=True, help="ZIP file to write")
    verify = dossier.add_parser("verify", help="check a dossier's files against its signed manifest")
    verify.add_argument("file", type=Path, help="the dossier ZIP")
    verify.add_argument(
        "--trusted-key",
        type=Path,
        action="append",
        help="the registry's public signing key file (repeatable); default: this machine's keys dir",
    )


def _verify(args: argparse.Namespace, settings: Any) -> int:
    from service.audit import checkpoints
    from service.handoff import archive

    try:
        if args.trusted_key:
            trusted = [archive.read_trusted_key(path) for path in args.trusted_key]
        else:
            trusted = [
                archive.TrustedKey(key_id, algorithm, public)
                for key_id, (algorithm, public) in checkpoints.trusted_public_key(
                    settings.effective_keys_dir
                ).items()
            ]
        if not args.file.is_file():
            raise archive.DossierInvalid(f"{args.file}: no such file")
        with args.file.open("rb") as source:
            verified = archive.verify_zip(source, trusted)
    except archive.DossierInvalid as exc:
        print(f"dossier NOT intact: {exc}", file=sys.stderr)
        return 1
    print(verified.describe())
    return 0


async def _export(args: argparse.Namespace, settings: Any) -> int:
    from sqlalchemy import or_, select

    from service.app.runtime import build_runtime
    from service.auth import service as auth_service
    from service.handoff import service as handoff_service
    from service.platform.migrations import ensure_schema
    from service.registry.models import Clue

    token = sys.stdin.readline().strip()
    if not token:
        print("tipline: give your staff API token on standard input", file=sys.stderr)
        return 2
    runtime = build_runtime(settings, frozenset({"staff"}))
    try:
        await ensure_schema(runtime.engine, auto_upgrade=False)
        async with runtime.session_factory() as session:
            principal = await auth_service.authenticate(session, token)
            clue_id = await session.scalar(
                select(Clue.id).where(or_(Clue.registry_number == args.clue, Clue.id == args.clue[:36]))
            )
            dossier = await handoff_service.export_dossier(
                session, clue_id=clue_id or "", principal=principal, runtime=runtime
            )
            await session.commit()  # audited first: an export is never written without its audit entry
        args.out.write_bytes(dossier.data)
    finally:
        await runtime.close()
    print(f"dossier of {dossier.registry_number} written to {args.out}")
    print(f"dossier hash {dossier.hash_algorithm}:{dossier.digest}")
    return 0


async def _dossier(args: argparse.Namespace, settings: Any) -> int:
    if args.dossier_command == "verify":
        return _verify(args, settings)
    return await _export(args, settings)


COMMANDS = {"dossier": _dossier}
