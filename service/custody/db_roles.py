"""Least privilege on PostgreSQL: the roles the intake and staff processes connect as.

``tipline db roles`` (as the owner that runs migrations) creates or updates two login roles:

- ``<prefix>_intake``: may INSERT new reports (clues, categories, receipts, contact envelopes, audit
  entries), advance the registry counter and the audit heads, read unit names to link the accused's unit,
  and look up a receipt's status only through ``tipline_receipt_status(code_hash)``, a SECURITY DEFINER
  function that returns one status word. It can SELECT no report content, no receipt table, no staff table.
- ``<prefix>_staff``: reads and writes the application's tables, owns nothing; on the audit trail it may only
  INSERT and SELECT (heads: also UPDATE). Not being the owner, it can neither drop nor disable the
  append-only trigger, and UPDATE/DELETE on ``audit_entries`` is not granted at all.

Migrations keep running as the owner. Passwords are set by the operator (``ALTER ROLE … PASSWORD``) or
by the cluster's authentication; this module never handles them.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

INTAKE_INSERT = (
    "clues",
    "clue_categories",
    "receipts",
    "clue_contacts",
    "audit_entries",
    "reporter_keys",
    "attachments",
    "messages",
    "near_duplicate_pending",  # intake queues the clues it registers for the near-duplicate task
)
INTAKE_COUNTERS = ("audit_heads", "registry_counters")
AUDIT_TABLES = ("audit_entries", "audit_heads")

RECEIPT_STATUS_FUNCTION = """
CREATE OR REPLACE FUNCTION tipline_receipt_status(p_code_hash bytea) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.status FROM receipts r JOIN clues c ON c.id = r.clue_id
    WHERE r.code_hash = p_code_hash AND r.revoked_at IS NULL
$$
"""


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", name):
        raise ValueError("role names are lower-case letters, digits and underscores")
    return name


async def apply_roles(connection: AsyncConnection, *, prefix: str = "tipline") -> tuple[str, str]:
    """Create or update the intake and staff roles and their grants in the current database."""
    intake, staff = _ident(f"{prefix}_intake"), _ident(f"{prefix}_staff")
    for role in (intake, staff):
        exists = await connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not exists:
            await connection.execute(text(f"CREATE ROLE {role} LOGIN NOINHERIT"))
    database = await connection.scalar(text("SELECT current_database()"))
    await connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {intake}, {staff}'))
    await connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {intake}, {staff}"))
    await connection.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {intake}, {staff}"))

    tables = list(
        (
            await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        ).scalars()
    )
    # Staff: everything of the application's, nothing of Alembic's, append-only on the audit trail.
    for table in tables:
        if table == "alembic_version":
            await connection.execute(text(f"GRANT SELECT ON {table} TO {staff}"))
        elif table == "audit_entries":
            await connection.execute(text(f"REVOKE ALL ON {table} FROM {staff}"))
            await connection.execute(text(f"GRANT SELECT, INSERT ON {table} TO {staff}"))
        elif table == "audit_heads":
            await connection.execute(text(f"REVOKE ALL ON {table} FROM {staff}"))
            await connection.execute(text(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {staff}"))
        else:
            await connection.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {staff}"))
    await connection.execute(
        text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {intake}, {staff}")
    )

    # Intake: insert-only on what a new report writes.
    for table in tables:
        await connection.execute(text(f"REVOKE ALL ON {table} FROM {intake}"))
    for table in INTAKE_INSERT:
        if table in tables:
            await connection.execute(text(f"GRANT INSERT ON {table} TO {intake}"))
    # INSERT … RETURNING id needs SELECT on the id column only.
    await connection.execute(text(f"GRANT SELECT (id) ON audit_entries TO {intake}"))
    for table in INTAKE_COUNTERS:
        await connection.execute(text(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {intake}"))
    await connection.execute(text(f"GRANT SELECT (id, name, parent_id) ON units TO {intake}"))
    await connection.execute(text(f"GRANT SELECT (version_num) ON alembic_version TO {intake}"))

    await connection.execute(text(RECEIPT_STATUS_FUNCTION))
    await connection.execute(text("REVOKE ALL ON FUNCTION tipline_receipt_status(bytea) FROM PUBLIC"))
    await connection.execute(
        text(f"GRANT EXECUTE ON FUNCTION tipline_receipt_status(bytea) TO {intake}, {staff}")
    )
    return intake, staff
