"""Registry numbers: ``<prefix>-<year>-<6-digit sequence>``, the year and sequence counted in Asia/Shanghai."""

from __future__ import annotations

from functools import cache

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from service.registry.models import RegistryCounter


def format_registry_number(prefix: str, year: int, value: int) -> str:
    return f"{prefix}-{year}-{value:06d}"


def next_registry_numbers(session: Session, *, prefix: str, year: int, count: int = 1) -> list[str]:
    """Take the next ``count`` numbers in the caller's transaction.

    The counter row stays locked until the transaction ends, so concurrent registrations get distinct,
    increasing numbers, and a rolled-back registration releases its number: the ledger has no gaps.
    A gap can only appear if a registered clue's row is later removed (retention purge), which the audit
    trail records.
    """
    statement = _take_numbers(session.bind.dialect.name)
    last = (
        session.connection()
        .execute(statement, {"b_prefix": prefix, "b_year": year, "b_count": count})
        .scalar_one()
    )
    return [format_registry_number(prefix, year, value) for value in range(last - count + 1, last + 1)]


@cache
def _take_numbers(dialect: str) -> Insert:
    """Built once per dialect (Core, bound parameters): this runs once per intake batch."""
    counters = RegistryCounter.__table__
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(counters)
        .values(prefix=bindparam("b_prefix"), year=bindparam("b_year"), last_value=bindparam("b_count"))
        .on_conflict_do_update(
            index_elements=[counters.c.prefix, counters.c.year],
            set_={"last_value": counters.c.last_value + bindparam("b_count")},
        )
        .returning(counters.c.last_value)
    )
