"""``tipline keys …`` and ``tipline custody …``: the custodial command line.

Passphrases are prompted for on the terminal (not echoed), or read one per line from a file descriptor with
``--passphrase-fd N`` (for scripted ceremonies and tests); never from an argument, which ``ps`` would show.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.cli.common import CLI_ACTOR, in_session


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="key ceremony: init, rotate, export-public, reencrypt")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (("init", "generate production keys"), ("rotate", "new keys; old private kept")):
        p = ks.add_parser(name, help=text)
        p.add_argument("--custodian", action="append", required=True, help="custodian account name (repeat)")
        p.add_argument("--threshold", type=int, default=2, help="shares needed to open an identity (>= 2)")
        p.add_argument("--custody-dir", type=Path, help="where custodian files go (default data_dir/custody)")
        p.add_argument("--passphrase-fd", type=int, help="read one passphrase per custodian, a line each")
    export = ks.add_parser("export-public", help="print the current public keys as JSON")
    export.add_argument("--out", type=Path, help="write to this file instead")
    reenc = ks.add_parser("reencrypt", help="re-seal case envelopes to the current case key (resumable)")
    reenc.add_argument("--batch", type=int, default=200)

    custody = sub.add_parser("custody", help="identity releases (two people) and contact releases (one)")
    cs = custody.add_subparsers(dest="custody_command", required=True)
    req = cs.add_parser(
        "request", help="ask to open a clue's reporter identity (or send fields of it onward)"
    )
    req.add_argument("--clue", required=True)
    req.add_argument("--as", dest="actor", required=True, help="your account name")
    req.add_argument("--reason", required=True)
    req.add_argument(
        "--into-dossier",
        metavar="TRANSFER_ID",
        help="instead: include the --field identity fields in the dossier of this hand-off of the clue",
    )
    req.add_argument(
        "--field",
        action="append",
        default=[],
        help="with --into-dossier: an identity field to include (name, phone, callback_number, email, "
        "id_number, address; repeat)",
    )
    for name in ("approve", "refuse"):
        p = cs.add_parser(name, help=f"{name} a pending request (a second custodian or a supervisor)")
        p.add_argument("request_id")
        p.add_argument("--as", dest="actor", required=True)
        if name == "approve":
            p.add_argument("--window-minutes", type=int, default=60, help="how long the approval holds")
    rel = cs.add_parser(
        "release",
        help="open an approved identity with custodians' shares; a dossier request writes the hand-off's "
        "dossier with the decided fields (--out; the exporting staff member's API token on stdin)",
    )
    rel.add_argument("request_id")
    rel.add_argument("--as", dest="actor", required=True, help="the requester")
    rel.add_argument("--share", type=Path, action="append", required=True, help="a custodian's share file")
    rel.add_argument("--passphrase-fd", type=int)
    rel.add_argument("--out", type=Path, help="a dossier request: the dossier ZIP to write")
    con = cs.add_parser("contact", help="statutory feedback: open only a reporter's contact fields")
    con.add_argument("--clue", required=True)
    con.add_argument("--as", dest="actor", required=True)
    con.add_argument("--reason", required=True)
    con.add_argument("--key", type=Path, required=True, help="your contact key file")
    con.add_argument("--passphrase-fd", type=int)
    rec = cs.add_parser(
        "recover-unit", help="compartments: hand a unit's escrowed clues to a member with custodians' shares"
    )
    rec.add_argument("--unit", required=True, help="unit name or id")
    rec.add_argument("--to", dest="receiver", required=True, help="an active member of the unit")
    rec.add_argument("--share", type=Path, action="append", required=True, help="a custodian's escrow share")
    rec.add_argument("--passphrase-fd", type=int)
    lst = cs.add_parser("list", help="list requests (ids, statuses, times)")
    lst.add_argument(
        "--reasons",
        action="store_true",
        help="also show each reason, opened with your keys (your API token on standard input); a clue you "
        "do not hold shows its reason as sealed",
    )
    unmask = cs.add_parser(
        "unmask", help="apply a supervisor's unmask request with custodians' shares (shows that one span)"
    )
    unmask.add_argument("request_id")
    unmask.add_argument("--as", dest="actor", required=True, help="your account name (a custodian)")
    unmask.add_argument("--share", type=Path, action="append", required=True, help="a custodian's share file")
    unmask.add_argument("--passphrase-fd", type=int)


def _passphrases(fd: int | None, labels: list[str]) -> list[str]:
    if fd is not None:
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as fh:
            lines = [line.rstrip("\n") for line in fh]
        if len(lines) < len(labels):
            raise SystemExit(f"tipline: {len(labels)} passphrases needed on fd {fd}, got {len(lines)}")
        return lines[: len(labels)]
    return [getpass.getpass(f"passphrase for {label}: ") for label in labels]


async def keys_command(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.custody import ceremony

    keys_dir = settings.effective_keys_dir
    if args.keys_command == "export-public":
        text = json.dumps(ceremony.export_public(keys_dir=keys_dir, suite=settings.crypto_suite), indent=2)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
        return 0
    if args.keys_command == "reencrypt":
        return await _reencrypt(args, settings)
    names = [n.strip() for value in args.custodian for n in value.split(",") if n.strip()]
    custody_dir = args.custody_dir or settings.data_dir / "custody"
    phrases = _passphrases(args.passphrase_fd, names)
    people = [ceremony.Custodian(n, p) for n, p in zip(names, phrases, strict=True)]

    async def check_custodians(session: AsyncSession) -> None:
        from service.custody.service import active_staff

        for name in names:
            _, roles = await active_staff(session, name)
            if "custodian" not in roles:
                raise SystemExit(f"tipline: {name} is not a custodian")

    await in_session(settings, check_custodians)
    make = ceremony.init_keys if args.keys_command == "init" else ceremony.rotate_keys
    result = make(
        keys_dir=keys_dir,
        custody_dir=custody_dir,
        suite=settings.crypto_suite,
        custodians=people,
        threshold=args.threshold,
    )

    async def audit(session: AsyncSession) -> None:
        from service.audit import service as audit_service

        await audit_service.record(
            session,
            actor=CLI_ACTOR,
            action=f"keys.{args.keys_command}",
            object_type="keys",
            object_id=result.identity_key_id,
            details={
                "case_key_id": result.case_key_id,
                "identity_key_id": result.identity_key_id,
                "contact_key_id": result.contact_key_id,
                "threshold": args.threshold,
                "custodians": len(people),
                "suite": settings.crypto_suite,
            },
        )

    await in_session(settings, audit)
    print(
        f"case key {result.case_key_id}, identity key {result.identity_key_id} "
        f"({args.threshold} of {len(people)}), contact key {result.contact_key_id}"
    )
    for path in result.files:
        print(f"  wrote {path}")
    print("Hand each custodian their two files and delete them from this machine.")
    return 0


async def _reencrypt(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.app.runtime import load_keys, require_case_key
    from service.custody import rotation

    keys = require_case_key(settings, load_keys(settings, frozenset({"staff"})))
    total = 0
    while True:
        done = await in_session(settings, lambda s: rotation.reencrypt_batch(s, keys=keys, limit=args.batch))
        total += done
        if done < args.batch:
            break
    print(f"re-sealed {total} clue(s) to {keys.case_public.key_id}")
    return 0


async def custody_command(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.app.runtime import load_keys, load_lookup_secret
    from service.custody import service as custody
    from service.custody.models import CustodyRequest
    from service.intake import originals
    from service.platform.runtime import derive_lookup_key
    from service.registry import recusal

    roles = (
        frozenset({"staff"}) if any(settings.effective_keys_dir.glob("case*.private.json")) else frozenset()
    )
    keys = load_keys(settings, roles)
    # recusal asks the reporter's words through the keyed digests intake stored, as assignment does
    words_key = derive_lookup_key(load_lookup_secret(settings), recusal.WORDS_KEY_LABEL)

    async def work(session: AsyncSession) -> list[str]:
        cmd = args.custody_command
        if cmd == "request":
            row = await custody.request_release(
                session,
                clue_id=args.clue,
                requester=args.actor,
                reason=args.reason,
                kind="dossier" if args.into_dossier else "identity",
                keys=keys,
                words_key=words_key,
                transfer_id=args.into_dossier,
                fields=args.field,
            )
            what = (
                f" (fields {row.fields} into the dossier of hand-off {row.transfer_id})" if row.fields else ""
            )
            return [f"request {row.id} pending{what}: a second custodian or a supervisor must approve it"]
        if cmd in ("approve", "refuse"):
            window = timedelta(minutes=getattr(args, "window_minutes", 60))
            row = await custody.decide(
                session,
                request_id=args.request_id,
                approver=args.actor,
                approve=cmd == "approve",
                keys=keys,
                words_key=words_key,
                window=window,
            )
            return [
                f"request {row.id} {row.status}"
                + (f" until {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else "")
            ]
        if cmd == "release":
            phrases = _passphrases(args.passphrase_fd, [str(p) for p in args.share])
            shares = [custody.ShareInput(p, s) for p, s in zip(args.share, phrases, strict=True)]
            request = await session.get(CustodyRequest, args.request_id)
            later = await originals.later_originals(session, request.clue_id) if request else []
            identity = await custody.release_identity(
                session,
                request_id=args.request_id,
                receiver=args.actor,
                shares=shares,
                keys=keys,
                later=later,
            )
            return [json.dumps(identity, ensure_ascii=False, indent=2)]
        if cmd == "unmask":
            from service.redaction import service as redaction

            phrases = _passphrases(args.passphrase_fd, [str(p) for p in args.share])
            version = await redaction.apply_unmask(
                session,
                request_id=args.request_id,
                custodian=args.actor,
                shares=[custody.ShareInput(p, s) for p, s in zip(args.share, phrases, strict=True)],
                keys=keys,
            )
            # The revealed words are not printed: staff read them in the clue's new version.
            return [
                f"request {args.request_id} applied: "
                f"{version.target} version {version.version} ({version.id})"
            ]
        if cmd == "contact":
            (phrase,) = _passphrases(args.passphrase_fd, [str(args.key)])
            contact = await custody.release_contact(
                session,
                clue_id=args.clue,
                custodian=args.actor,
                reason=args.reason,
                key_file=custody.ShareInput(args.key, phrase),
                keys=keys,
                words_key=words_key,
            )
            return [json.dumps(contact, ensure_ascii=False, indent=2)]
        if cmd == "recover-unit":
            from service.auth import service as auth_service

            phrases = _passphrases(args.passphrase_fd, [str(p) for p in args.share])
            unit = await auth_service.find_unit(session, args.unit)
            recovered = await custody.recover_unit(
                session,
                unit_id=unit.id,
                receiver=args.receiver,
                shares=[custody.ShareInput(p, s) for p, s in zip(args.share, phrases, strict=True)],
                actor=CLI_ACTOR,
                commit=session.commit,
            )
            granted = "unit key granted" if recovered.unit_key_granted else "no unit key to grant"
            rotated = "; unit key rotated" if recovered.unit_key_rotated else ""
            return [f"{recovered.clues} clues handed to {args.receiver}; {granted}{rotated}"]
        viewer = None
        if args.reasons:
            from service.auth import service as auth_service

            viewer = await auth_service.authenticate(session, _token())
        views = await custody.list_requests(session, keys=keys, viewer=viewer)
        return [_request_line(view, reasons=args.reasons) for view in views]

    from service.platform.errors import DomainError

    async def kind_of_request(session: AsyncSession) -> str | None:
        return await session.scalar(select(CustodyRequest.kind).where(CustodyRequest.id == args.request_id))

    try:
        if args.custody_command == "release" and await in_session(settings, kind_of_request) == "dossier":
            phrases = _passphrases(args.passphrase_fd, [str(p) for p in args.share])
            shares = [custody.ShareInput(p, s) for p, s in zip(args.share, phrases, strict=True)]
            lines = await _release_into_dossier(args, settings, shares)
        else:
            lines = await in_session(settings, work)
    except DomainError as exc:
        if args.custody_command in ("release", "contact", "unmask"):
            await _record_failure(settings, args, exc)
        raise
    for line in lines:
        sys.stdout.write(line + "\n")
    return 0


def _token() -> str:
    token = sys.stdin.readline().strip()
    if not token:
        raise SystemExit("tipline: give the staff member's API token on standard input")
    return token


def _request_line(view, *, reasons: bool) -> str:  # type: ignore[no-untyped-def]
    r = view.request
    line = f"{r.id}  clue={r.clue_id}  {r.kind}  {r.status}  requested {r.created_at:%Y-%m-%d %H:%M}"
    if r.kind == "dossier":
        line += f"  into hand-off {r.transfer_id}: {r.fields}"
    if reasons:
        line += "\n    reason: " + (view.reason if view.reason is not None else " / ".join(view.sealed))
    return line


async def _release_into_dossier(args: argparse.Namespace, settings, shares: list) -> list[str]:  # type: ignore[no-untyped-def,type-arg]
    """A dossier request: the requester opens the decided fields with the shares and the staff member whose
    API token is on standard input exports the hand-off's dossier with them, in one transaction of its own
    (committed with its audit entries before the file is written)."""
    from service.app.runtime import build_runtime
    from service.auth import service as auth_service
    from service.handoff import service as handoff_service

    if args.out is None:
        raise SystemExit("tipline: a dossier release writes the dossier: give --out FILE")
    token = _token()
    runtime = build_runtime(settings, frozenset({"staff"}))
    try:
        async with runtime.session_factory() as session:
            principal = await auth_service.authenticate(session, token)
            dossier = await handoff_service.export_released_dossier(
                session,
                request_id=args.request_id,
                receiver=args.actor,
                shares=shares,
                principal=principal,
                runtime=runtime,
            )
            await session.commit()
    finally:
        await runtime.close()
    args.out.write_bytes(dossier.data)
    return [
        f"dossier of {dossier.registry_number} with released identity written to {args.out}",
        f"dossier hash {dossier.hash_algorithm}:{dossier.digest}",
    ]


async def _record_failure(settings, args: argparse.Namespace, exc: Exception) -> None:  # type: ignore[no-untyped-def]
    """A failed release attempt (wrong passphrase, too few shares, recusal) is audited on its own, since
    the attempt's own transaction was rolled back."""
    from service.audit import service as audit_service

    async def work(session: AsyncSession) -> None:
        await audit_service.record(
            session,
            actor=CLI_ACTOR,
            action=f"custody.{args.custody_command}_failed",
            object_type="custody",
            object_id=getattr(args, "request_id", None) or args.clue,
            details={"error": type(exc).__name__},
        )

    await in_session(settings, work)


COMMANDS = {"keys": keys_command, "custody": custody_command}
