"""`tipline db`: schema migrations and PostgreSQL roles."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parsers(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply all pending migrations")
    db.add_parser("current", help="print the schema revision")
    roles = db.add_parser("roles", help="PostgreSQL: least-privilege intake and staff roles")
    roles.add_argument("--prefix", default="tipline", help="role names: <prefix>_intake, <prefix>_staff")
    down = db.add_parser("downgrade", help="revert to a revision")
    down.add_argument("revision")


async def run_db(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
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


COMMANDS = {"db": run_db}
