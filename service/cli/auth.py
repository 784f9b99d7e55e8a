"""`tipline staff`, `tipline unit`: staff accounts, API tokens, web-login credentials, units."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.cli.common import CLI_ACTOR, in_session


def public_keys(settings):  # type: ignore[no-untyped-def]
    """What new accounts' compartment keys are made with: the suite, and the escrow public key once the key
    ceremony has made one (custodians' accounts come before the ceremony, so nothing is generated here)."""
    from service.app.runtime import key_paths
    from service.compartments.keys import NewKeys
    from service.platform.crypto.keys import SUITE_NAMES, read_public_key

    escrow = key_paths(settings)["escrow_public"]
    return NewKeys(SUITE_NAMES[settings.crypto_suite], read_public_key(escrow) if escrow.exists() else None)


def add_parsers(sub: Any) -> None:
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
    move = staff.add_parser(
        "move", help="move an account to another unit (the old unit's key is rotated, as after disabling)"
    )
    move.add_argument("name")
    where = move.add_mutually_exclusive_group(required=True)
    where.add_argument("--unit", help="unit name or id")
    where.add_argument("--no-unit", action="store_true", help="out of any unit")
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
    unit_add.add_argument("--alias", action="append", default=[], help="another name reporters use (repeat)")
    unit_alias = unit.add_parser("alias", help="set the other names of a unit (recusal matches them)")
    unit_alias.add_argument("--unit", required=True, help="unit name or id")
    unit_alias.add_argument("--alias", action="append", default=[], help="an alias (repeat; none: clear)")
    unit.add_parser("list", help="list units")
    rotate = unit.add_parser(
        "rotate-key",
        help="replace your unit's key after someone who held it left (with your password; resumable)",
    )
    rotate.add_argument("--as", dest="member", required=True, help="your account name (a member of the unit)")
    rotate.add_argument("--stdin", action="store_true", help="read the password from standard input")


async def _staff(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.auth import service as auth_service

    if args.staff_command in ("set-password", "enrol-totp", "reset-totp"):
        return await _staff_login(args, settings)

    async def work(session: AsyncSession) -> list[str]:
        if args.staff_command == "add":
            roles = [r.strip() for value in args.role for r in value.split(",") if r.strip()]
            unit_id = (await auth_service.find_unit(session, args.unit)).id if args.unit else None
            staff, personal = await auth_service.add_staff(
                session,
                name=args.name,
                roles=roles,
                unit_id=unit_id,
                actor=CLI_ACTOR,
                keys=public_keys(settings),
            )
            # The first token carries the new personal key: the one moment it is in memory.
            _, token = await auth_service.issue_token(
                session, staff=staff, ttl_days=settings.token_ttl_days, actor=CLI_ACTOR, personal=personal
            )
            return [f"created {staff.name} ({staff.id}) with roles {', '.join(sorted(roles))}", token]
        if args.staff_command == "disable":
            staff = await auth_service.find_staff(session, args.name)
            await auth_service.disable_staff(session, staff=staff, actor=CLI_ACTOR)
            return [f"disabled {staff.name}; all its tokens revoked"]
        if args.staff_command == "move":
            from service.registry import service as registry_service

            staff = await auth_service.find_staff(session, args.name)
            unit = await auth_service.find_unit(session, args.unit) if args.unit else None
            await registry_service.move_staff(
                session,
                staff_id=staff.id,
                unit_id=unit.id if unit else None,
                actor=CLI_ACTOR,
                keys=public_keys(settings),
            )
            return [
                f"moved {staff.name} to {unit.name if unit else 'no unit'}; the old unit's key is due for rotation"
            ]
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
            await session_service.set_password(
                session, staff=staff, password=password, actor=CLI_ACTOR, keys=public_keys(settings)
            )
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


async def _rotate_unit_key(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    """The member's password never appears in argv, logs or audit details."""
    from service.auth import service as auth_service
    from service.auth import sessions as session_service

    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass("密码 Password: ")

    async def work(session: AsyncSession) -> list[str]:
        staff = await auth_service.find_staff(session, args.member)
        steps = await session_service.rotate_unit_keys(
            session, staff=staff, password=password, commit=session.commit
        )
        if not steps:
            return ["no unit key of yours is due for rotation"]
        rewrapped = sum(step.rewrapped for step in steps)
        finished = [step.old_key_id for step in steps if step.finished]
        return [f"{rewrapped} clue wraps rewrapped; {len(finished)} unit key(s) replaced and retired"]

    for line in await in_session(settings, work):
        print(line)
    return 0


async def _unit(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from service.auth import service as auth_service
    from service.auth.unit_names import aliases_of

    if args.unit_command == "rotate-key":
        return await _rotate_unit_key(args, settings)

    async def work(session: AsyncSession) -> list[str]:
        if args.unit_command == "add":
            parent_id = (await auth_service.find_unit(session, args.parent)).id if args.parent else None
            unit = await auth_service.add_unit(
                session,
                name=args.name,
                kind=args.kind,
                parent_id=parent_id,
                actor=CLI_ACTOR,
                aliases=args.alias,
            )
            return [f"created unit {unit.name} ({unit.id})"]
        if args.unit_command == "alias":
            unit = await auth_service.find_unit(session, args.unit)
            await auth_service.set_unit_aliases(session, unit=unit, aliases=args.alias, actor=CLI_ACTOR)
            return [f"unit {unit.name}: aliases {'、'.join(aliases_of(unit)) or '-'}"]
        return [
            f"{u.id}  {u.name}  {u.kind}  parent={u.parent_id or '-'}"
            f"  aliases={'、'.join(aliases_of(u)) or '-'}"
            for u in await auth_service.list_units(session)
        ]

    for line in await in_session(settings, work):
        print(line)
    return 0


COMMANDS = {"staff": _staff, "unit": _unit}
