"""Registry numbers: ``<prefix>-<year>-<6-digit sequence>``, the year and sequence counted in Asia/Shanghai."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

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
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(RegistryCounter)
        .values(prefix=prefix, year=year, last_value=count)
        .on_conflict_do_update(
            index_elements=[RegistryCounter.prefix, RegistryCounter.year],
            set_={"last_value": RegistryCounter.last_value + count},
        )
        .returning(RegistryCounter.last_value)
    )
    last = session.execute(statement).scalar_one()
    return [format_registry_number(prefix, year, value) for value in range(last - count + 1, last + 1)]
