"""The thief of a staff server: every private key file of its data directory that is not a custodian's, and
a copy of every table; what that opens (``test_compartments_thief``, ``test_compartments_adopt``)."""

from __future__ import annotations

from sqlalchemy import LargeBinary, select

from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import KeyRing, read_key_pair
from service.platform.db import Base
from tests.helpers.app import Harness


def thiefs_ring(harness: Harness) -> KeyRing:
    """Every private key file of the data directory outside the custodians' ``custody/`` (a case key where
    one is mounted for clues registered before compartments; none on a staff server without one)."""
    data_dir = harness.data_dir
    found = [p for p in data_dir.rglob("*.private.json") if "custody" not in p.relative_to(data_dir).parts]
    keys = harness.runtime.keys
    return KeyRing(
        case_public=keys.case_public,
        identity_public=keys.identity_public,
        contact_public=keys.contact_public,
        escrow_public=keys.escrow_public,
        private=[read_key_pair(p) for p in found],
    )


async def every_row(harness: Harness) -> list[tuple[str, str, dict[str, object]]]:
    """(table, primary key, row) for every row of every table: the database copy."""
    rows = []
    async with harness.runtime.session_factory() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                key = "/".join(str(row[c.name]) for c in table.primary_key.columns)
                rows.append((table.name, key, dict(row)))
    return rows


def bindings(table: str, key: str, column: str, row: dict[str, object]) -> list[str]:
    """What a thief would try as the envelope's binding: the record's own names, as the service forms them."""
    names = [f"{table}/{key}/{column}", f"{table}/{key}"]
    if "clue_id" in row:
        names += [f"clues/{row['clue_id']}/{column}", f"clue_sealed/{row['clue_id']}/{column}"]
    if table == "clues":
        names.append(f"clues/{key}/{column}")
    for blob in ("blob_id", "original_blob_id"):
        if row.get(blob):
            names.append(f"attachment/{row[blob]}")
    return names


def what_opens(
    rows: list[tuple[str, str, dict[str, object]]], ring: KeyRing, secret: list[bytes], clue_ids: set[str]
) -> tuple[list[str], int]:
    """Every column of every row: the words in plaintext fail at once; each LargeBinary value that parses
    as an envelope is tried with the thief's keys under every binding its record suggests. Returns the
    columns that opened (to the words, or at all for a row of ``clue_ids``) and how many envelopes there
    were."""
    thief_keys = {pair.public.key_id for pair in ring._private.values()}
    opened: list[str] = []
    envelopes = 0
    for table, key, row in rows:
        for column in Base.metadata.tables[table].columns:
            value = row[column.name]
            if isinstance(value, str | bytes):
                data = value.encode() if isinstance(value, str) else value
                assert not any(s in data for s in secret), f"plaintext in {table}.{column.name}"
            if not isinstance(column.type, LargeBinary) or not value:
                continue
            try:
                envelope = Envelope.from_bytes(value)
            except EnvelopeError:
                continue
            envelopes += 1
            if envelope.key_id not in thief_keys:
                continue
            ours = row.get("clue_id") in clue_ids or (table == "clues" and key in clue_ids)
            for binding in bindings(table, key, column.name, row):
                try:
                    plain = ring.open(value, binding)
                except EnvelopeError:
                    continue
                if ours or any(s in plain for s in secret):
                    opened.append(f"{table}.{column.name}")
    return opened, envelopes
