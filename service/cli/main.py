"""The ``tipline`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from service.classification import classifier
from service.cli import registry as registry_cli
from service.cli.classification import add_parsers as add_classification_parsers
from service.cli.classification import taxonomy_command
from service.cli.classify import run as run_classify
from service.cli.common import CLI_ACTOR, in_session
from service.cli.custody import add_parsers as add_custody_parsers
from service.cli.custody import custody_command, keys_command
from service.cli.registry import add_subcommands as add_registry_subcommands
from service.platform.settings import SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tipline", description="Tipline: tip intake and clue registry")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (all roles on the embedded default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--role",
        choices=["intake", "mail", "staff", "worker"],
        action="append",
        help="run only these roles (repeatable); default: all",
    )
    serve.add_argument("--upgrade", action="store_true", help="apply pending database migrations first")
    serve.add_argument(
        "--workers", type=int, default=1, help="HTTP worker processes (uvicorn --workers); default 1"
    )
    serve.add_argument(
        "--smtp-port", type=int, default=None, help="SMTP receiver port with the mail role (default 2525; 0: off)"
    )
    mail_receiver = sub.add_parser("mail-receiver", help="run only the SMTP receiver (and the IMAP poller)")
    mail_receiver.add_argument("--smtp-port", type=int, default=None, help="default 2525; 0: IMAP poller only")
    sub.add_parser("mail-outbound-key", help="generate the outbound key pair (acknowledgement addresses)")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply all pending migrations")
    db.add_parser("current", help="print the schema revision")
    roles = db.add_parser("roles", help="PostgreSQL: least-privilege intake and staff roles")
    roles.add_argument("--prefix", default="tipline", help="role names: <prefix>_intake, <prefix>_staff")
    down = db.add_parser("downgrade", help="revert to a revision")
    down.add_argument("revision")

    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="check every hash chain; exit 1 naming the first bad entry")
    verify.add_argument("--checkpoint", type=Path, help="also compare with this exported signed checkpoint")
    checkpoint = audit.add_parser("checkpoint", help="sign the chain heads now and export the checkpoint")
    checkpoint.add_argument("--out", type=Path, required=True, help="checkpoint file to write")

    staff = sub.add_parser("staff", help="staff accounts").add_subparsers(dest="staff_command", required=True)
    add = staff.add_parser("add", help="create an account; prints its API token on the last line")
    add.add_argument("--name", required=True)
    add.add_argument(
        "--role",
        required=True,
        action="append",
        help="operator, investigator, supervisor, custodian or admin (repeatable, or comma-separated)",
    )
    add.add_argument("--unit", help="unit name or id")
    disable = staff.add_parser("disable", help="disable an account and revoke its tokens")
    disable.add_argument("name")
    token = staff.add_parser("token", help="issue a new API token; prints it on the last line")
    token.add_argument("name")
    revoke = staff.add_parser("revoke-token", help="revoke one token by its id")
    revoke.add_argument("token_id")
    staff.add_parser("list", help="list accounts")
    set_password = staff.add_parser(
        "set-password", help="set the web-login password (asks twice; --stdin reads one line)"
    )
    set_password.add_argument("name")
    set_password.add_argument("--stdin", action="store_true", help="read the password from standard input")
    enrol_totp = staff.add_parser("enrol-totp", help="new TOTP secret; prints the otpauth:// URI once")
    enrol_totp.add_argument("name")
    reset_totp = staff.add_parser("reset-totp", help="remove the TOTP secret (no web login until enrolled)")
    reset_totp.add_argument("name")

    unit = sub.add_parser("unit", help="organisation units").add_subparsers(
        dest="unit_command", required=True
    )
    unit_add = unit.add_parser("add", help="create a unit")
    unit_add.add_argument("--name", required=True)
    unit_add.add_argument("--kind", default="other")
    unit_add.add_argument("--parent", help="parent unit name or id")
    unit.add_parser("list", help="list units")

    add_custody_parsers(sub)  # keys …, custody …

    sub.add_parser(
        "classify", help="classify JSON Lines from stdin (see --help of the subcommand)", add_help=False
    )
    add_classification_parsers(sub)  # taxonomy validate|reload
    add_registry_subcommands(sub)
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
    from service.platform.crypto.keys import KeyFileError
    from service.platform.errors import DomainError
    from service.platform.migrations import SchemaOutOfDate

    try:
        if args.command == "serve":
            return _serve(args, settings)
        if args.command == "mail-receiver":
            from service.app.processes import run_mail_receiver

            asyncio.run(run_mail_receiver(settings, smtp_port=args.smtp_port))
            return 0
        if args.command == "mail-outbound-key":
            from service.notify.keys import generate

            print(f"outbound key {generate(settings).key_id} written to {settings.effective_keys_dir}")
            return 0
        return asyncio.run(_COMMANDS[args.command](args, settings))
    except DomainError as exc:
        print(f"tipline: {exc.message_en}", file=sys.stderr)
        return 1
    except (SchemaOutOfDate, KeyFileError) as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    import uvicorn

    from service.app.main import create_app
    from service.app.runtime import ROLES

    if args.upgrade:
        settings = settings.model_copy(update={"database_auto_upgrade": True})
    roles = frozenset(args.role or ROLES)
    if args.smtp_port is not None:
        settings = settings.model_copy(update={"smtp_port": args.smtp_port})
    from service.app import observability

    observability.configure_logging()
    # The worker role runs the job loop in-process (service/jobs); the mail role's SMTP receiver is started
    # in create_app's lifespan (see the hook there). access_log=False and no proxy headers: the public side
    # never records who connected.
    options = dict(host=args.host, port=args.port, log_config=None)
    options.update(access_log=False, server_header=False, proxy_headers=False)
    if args.workers > 1:
        import os

        if settings.database_auto_upgrade:
            asyncio.run(_db(argparse.Namespace(db_command="upgrade"), settings))
        os.environ["TIPLINE_SERVE_ROLES"] = ",".join(sorted(roles))
        uvicorn.run("service.app.main:create_app_from_env", factory=True, workers=args.workers, **options)
        return 0
    run_smtp = "mail" in roles and settings.smtp_port != 0
    uvicorn.run(create_app(settings, roles, run_worker="worker" in roles, run_smtp=run_smtp), **options)
    return 0


async def _db(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.platform.db import create_engine
    from service.platform.migrations import current_revision, head_revision, run_migrations

    engine = create_engine(settings.effective_database_url)
    try:
        if args.db_command == "roles":
            from service.custody.db_roles import apply_roles

            if not settings.effective_database_url.startswith("postgresql"):
                print("tipline: database roles are for PostgreSQL", file=sys.stderr)
                return 2
            async with engine.begin() as connection:
                intake, staff = await apply_roles(connection, prefix=args.prefix)
            print(f"roles {intake} (intake) and {staff} (staff) granted; set their passwords with ALTER ROLE")
        elif args.db_command == "upgrade":
            await run_migrations(engine, "upgrade", "head")
            print(f"database at {head_revision()}")
        elif args.db_command == "downgrade":
            await run_migrations(engine, "downgrade", args.revision)
            print(f"database at {await current_revision(engine)}")
        else:
            print(await current_revision(engine) or "empty")
    finally:
        await engine.dispose()
    return 0


async def _audit(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.audit import checkpoints
    from service.audit import service as audit_service

    if args.audit_command == "checkpoint":
        return await _audit_checkpoint(args, settings)
    if args.checkpoint is not None:
        try:
            document = json.loads(args.checkpoint.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"tipline: cannot read checkpoint {args.checkpoint}", file=sys.stderr)
            return 2
        trusted = checkpoints.trusted_public_key(settings.effective_keys_dir)
        problems = await in_session(
            settings, lambda s: checkpoints.verify_against(s, document, trusted=trusted)
        )
        for problem in problems:
            print(f"audit trail does NOT match the checkpoint: {problem}", file=sys.stderr)
        if problems:
            return 1
    report = await in_session(settings, audit_service.verify)
    if report.problem:
        print(f"audit trail BROKEN at {report.problem.describe()}", file=sys.stderr)
        return 1
    print(f"audit trail intact: {report.entries} entries in {report.chains} chain(s)")
    return 0


async def _staff(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.auth import service as auth_service

    if args.staff_command in ("set-password", "enrol-totp", "reset-totp"):
        return await _staff_login(args, settings)

    async def work(session: AsyncSession) -> list[str]:
        if args.staff_command == "add":
            roles = [r.strip() for value in args.role for r in value.split(",") if r.strip()]
            unit_id = (await auth_service.find_unit(session, args.unit)).id if args.unit else None
            staff = await auth_service.add_staff(
                session, name=args.name, roles=roles, unit_id=unit_id, actor=CLI_ACTOR
            )
            _, token = await auth_service.issue_token(
                session, staff=staff, ttl_days=settings.token_ttl_days, actor=CLI_ACTOR
            )
            return [f"created {staff.name} ({staff.id}) with roles {', '.join(sorted(roles))}", token]
        if args.staff_command == "disable":
            staff = await auth_service.find_staff(session, args.name)
            await auth_service.disable_staff(session, staff=staff, actor=CLI_ACTOR)
            return [f"disabled {staff.name}; all its tokens revoked"]
        if args.staff_command == "token":
            staff = await auth_service.find_staff(session, args.name)
            row, token = await auth_service.issue_token(
                session, staff=staff, ttl_days=settings.token_ttl_days, actor=CLI_ACTOR
            )
            return [f"token {row.id} expires {row.expires_at:%Y-%m-%d}", token]
        if args.staff_command == "revoke-token":
            await auth_service.revoke_token(session, token_id=args.token_id, actor=CLI_ACTOR)
            return [f"revoked {args.token_id}"]
        return [
            f"{s.id}  {s.name}  {','.join(sorted(r.role for r in s.roles))}  unit={s.unit_id or '-'}"
            + ("  DISABLED" if s.disabled else "")
            for s in await auth_service.list_staff(session)
        ]

    for line in await in_session(settings, work):
        print(line)
    return 0


async def _staff_login(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    """Web-login credentials. The password never appears in argv, logs or audit details."""
    from service.auth import service as auth_service
    from service.auth import sessions as session_service

    password = ""
    if args.staff_command == "set-password":
        if args.stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            import getpass

            password = getpass.getpass("新密码 New password: ")
            if getpass.getpass("再输入一次 Again: ") != password:
                print("tipline: the two passwords differ", file=sys.stderr)
                return 1

    async def work(session: AsyncSession) -> list[str]:
        staff = await auth_service.find_staff(session, args.name)
        if args.staff_command == "set-password":
            await session_service.set_password(session, staff=staff, password=password, actor=CLI_ACTOR)
            return [f"password set for {staff.name}; its web sessions ended"]
        if args.staff_command == "reset-totp":
            await session_service.reset_totp(session, staff=staff, actor=CLI_ACTOR)
            return [f"TOTP removed for {staff.name}; enrol again with `tipline staff enrol-totp`"]
        from service.app.runtime import ensure_development_material, load_lookup_secret

        ensure_development_material(settings)
        key = session_service.totp_key(load_lookup_secret(settings))
        uri = await session_service.enrol_totp(session, totp_key=key, staff=staff, actor=CLI_ACTOR)
        return [f"TOTP enrolled for {staff.name}; scan this URI (shown once):", uri]

    for line in await in_session(settings, work):
        print(line)
    return 0


async def _unit(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.auth import service as auth_service

    async def work(session: AsyncSession) -> list[str]:
        if args.unit_command == "add":
            parent_id = (await auth_service.find_unit(session, args.parent)).id if args.parent else None
            unit = await auth_service.add_unit(
                session, name=args.name, kind=args.kind, parent_id=parent_id, actor=CLI_ACTOR
            )
            return [f"created unit {unit.name} ({unit.id})"]
        return [
            f"{u.id}  {u.name}  {u.kind}  parent={u.parent_id or '-'}"
            for u in await auth_service.list_units(session)
        ]

    for line in await in_session(settings, work):
        print(line)
    return 0


async def _registry(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    commands = {"dev": registry_cli.run_dev, "routing": registry_cli.run_routing, "deadlines": registry_cli.run_deadlines}
    return await commands[args.command](args, settings)


_COMMANDS = {"db": _db, "audit": _audit, "staff": _staff, "unit": _unit, "dev": _registry, "routing": _registry, "deadlines": _registry}


async def _audit_checkpoint(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.audit import checkpoints

    key = checkpoints.load_or_create_signing_key(settings.effective_keys_dir, settings.crypto_suite)
    document = await in_session(
        settings, lambda s: checkpoints.create_checkpoint(s, key=key, actor=CLI_ACTOR)
    )
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"checkpoint of {len(document['heads'])} chain(s) signed by {key.key_id} written to {args.out}")
    return 0


async def _keys(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    return await keys_command(args, settings)


async def _custody(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    return await custody_command(args, settings)


_COMMANDS.update(keys=_keys, custody=_custody)


async def _taxonomy(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    return await taxonomy_command(args, settings)


_COMMANDS.update(taxonomy=_taxonomy)

if __name__ == "__main__":
    raise SystemExit(main())
