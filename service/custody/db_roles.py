"""Least privilege on PostgreSQL: the roles the intake and staff processes connect as.

``tipline db roles`` (as the owner that runs migrations) creates or updates two login roles:

- ``<prefix>_intake``: may INSERT new reports (clues, categories, receipts, contact envelopes, audit
  entries, messages, attachments), advance the registry counter and the audit heads, and read unit names to
  link the accused's unit. What a receipt holder's pages read — the clue's status, the message thread's
  reporter copies, the reporter key, the call record's reporter copies — it may read only for the receipt
  the transaction acts for: the process sets ``tipline.receipt`` to the code's keyed hash
  (``follow_up.scope_to_receipt``) and row-level security policies show it the rows of that receipt's clue
  (``tipline_receipt_clue()``, a SECURITY DEFINER function) and nothing else. Column grants keep every
  case-key column out of its reach: it can SELECT no report content, no message body, of the staff tables
  only which accounts are active supervisors of which unit and their public compartment keys, and
  without a code it sees no clue at all, not even how many there are. ``tipline_receipt_status(code_hash)``
  answers one status word for a hash.
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
    "clue_additions",  # a caller's confirmation of the operator's record
    "clue_objections",  # a real-name reporter's objection to a finding, from the status page
    "clue_sealed",  # compartments: the clue's fields under its own content key
    "clue_key_wraps",  # … and that key wrapped to the escrow and the supervisors
    "compartment_keys",  # the escrow public key's row, on first use
)
INTAKE_COUNTERS = ("audit_heads", "registry_counters")
# The web form's filed idempotency keys (HMACs naming no clue): claimed, finished and expired by intake.
INTAKE_OWN = ("submitted_forms",)
# What the receipt holder's side reads (and, for two, updates) — of the receipt's own clue only (RLS).
INTAKE_SCOPED: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # table: (the column naming the clue, columns it may SELECT, columns it may UPDATE)
    "receipts": (
        "clue_id",
        ("id", "clue_id", "code_hash", "created_at", "read_aloud", "revoked_at"),
        ("revoked_at",),
    ),
    # real_name and the keyed accused-name digests: a follow-up's time and masking (messages.reporter_send).
    "clues": ("id", ("id", "status", "assignee_id", "channel", "real_name", "accused_names"), ()),
    "messages": ("clue_id", ("id", "clue_id", "direction", "reporter_copy", "created_at"), ()),
    # blob_id and reporter_key: a file staff sent to the reporter, downloaded with the reporter key
    "attachments": (
        "clue_id",
        ("id", "clue_id", "message_id", "kind", "size", "created_at", "blob_id", "reporter_key"),
        (),
    ),
    "reporter_keys": (
        "clue_id",
        ("clue_id", "public_key", "salt", "wrapped_private", "created_at"),
        ("salt", "wrapped_private"),
    ),
    "clue_additions": ("clue_id", ("id", "clue_id", "kind", "reporter_copy", "created_at"), ()),
    # the clue's public key: a follow-up and its files are sealed to it (compartments), never the fields
    "clue_sealed": ("clue_id", ("clue_id", "public"), ()),
    "clue_objections": (
        "clue_id",
        (
            "id",
            "clue_id",
            "channel",
            "received_at",
            "status",
            "result",
            "reporter_copy",
            "answer_copy",
            "reviewed_at",
            "closed_at",
        ),
        (),
    ),
}
AUDIT_TABLES = ("audit_entries", "audit_heads")

RECEIPT_CLUE_FUNCTION = """
CREATE OR REPLACE FUNCTION tipline_receipt_clue() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.clue_id FROM receipts r
    WHERE r.code_hash = decode(nullif(current_setting('tipline.receipt', true), ''), 'hex')
      AND r.revoked_at IS NULL
$$
"""

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
    for table in INTAKE_OWN:
        if table in tables:
            await connection.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {intake}"))
    await connection.execute(text(f"GRANT SELECT (id, name, parent_id) ON units TO {intake}"))
    # Compartments: whom a new clue's key is wrapped to — supervisors' public keys and units, never a
    # private key's wrap (password_wrap, escrow_wrap stay out of reach).
    await connection.execute(
        text(
            f"GRANT SELECT (key_id, owner_kind, owner_id, public, retired_at) ON compartment_keys TO {intake}"
        )
    )
    await connection.execute(text(f"GRANT SELECT (id, unit_id, disabled) ON staff TO {intake}"))
    await connection.execute(text(f"GRANT SELECT (staff_id, role) ON staff_roles TO {intake}"))
    await connection.execute(text(f"GRANT SELECT (version_num) ON alembic_version TO {intake}"))

    await connection.execute(text(RECEIPT_CLUE_FUNCTION))
    await connection.execute(text("REVOKE ALL ON FUNCTION tipline_receipt_clue() FROM PUBLIC"))
    await connection.execute(text(f"GRANT EXECUTE ON FUNCTION tipline_receipt_clue() TO {intake}"))
    for table, (clue_column, readable, updatable) in INTAKE_SCOPED.items():
        if table not in tables:
            continue
        await connection.execute(text(f"GRANT SELECT ({', '.join(readable)}) ON {table} TO {intake}"))
        if updatable:
            await connection.execute(text(f"GRANT UPDATE ({', '.join(updatable)}) ON {table} TO {intake}"))
        await _scope_rows(connection, table, clue_column, intake=intake, staff=staff, update=bool(updatable))
    await connection.execute(text(RECEIPT_STATUS_FUNCTION))
    await connection.execute(text("REVOKE ALL ON FUNCTION tipline_receipt_status(bytea) FROM PUBLIC"))
    await connection.execute(
        text(f"GRANT EXECUTE ON FUNCTION tipline_receipt_status(bytea) TO {intake}, {staff}")
    )
    return intake, staff


async def _scope_rows(
    connection: AsyncConnection, table: str, clue_column: str, *, intake: str, staff: str, update: bool
) -> None:
    """Row-level security on a table the receipt holder's side reads: the intake role sees (and updates)
    the rows of the receipt's clue only, may insert freely (new reports); the staff role is unaffected.
    The owner, which runs migrations and the custodial command line, bypasses it."""
    await connection.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
    policies = {
        f"{intake}_read": f"FOR SELECT TO {intake} USING ({clue_column} = tipline_receipt_clue())",
        f"{intake}_insert": f"FOR INSERT TO {intake} WITH CHECK (true)",
        f"{staff}_all": f"FOR ALL TO {staff} USING (true) WITH CHECK (true)",
    }
    if update:
        policies[f"{intake}_update"] = (
            f"FOR UPDATE TO {intake} USING ({clue_column} = tipline_receipt_clue()) WITH CHECK (true)"
        )
    for name, rule in policies.items():
        await connection.execute(text(f"DROP POLICY IF EXISTS {name} ON {table}"))
        await connection.execute(text(f"CREATE POLICY {name} ON {table} {rule}"))
