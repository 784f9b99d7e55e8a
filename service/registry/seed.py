"""``tipline dev seed --clues N``: fill a development database with realistic, properly sealed clues.

Seed data only, and never in production: every clue gets its own envelopes bound to its own id (so reads,
exports and the benchmarks exercise the real decryption), but the plaintexts come from a small pool of
made-up reports and officers. Like intake, each clue is compartmented (a fresh content key, its fields
sealed under it, the key wrapped to the escrow, the supervisors and, once assigned, the assignee and the
handling unit) and keeps its case-key copy and its keyed recusal digests. On PostgreSQL rows go in with
COPY (asyncpg ``copy_records_to_table``), on SQLite with executemany, in batches, one transaction per batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from service.auth import service as auth_service
from service.auth.models import Staff, Unit
from service.compartments import keys as compartment_keys
from service.compartments import service as compartments
from service.compartments.models import ClueKeyWrap, ClueSealed
from service.platform.crypto.keys import AnyPublicKey, KeyRing, sealing_batch
from service.registry import keyholders, recusal
from service.registry.models import NO_CASE_COPY, Clue, ClueCategory, ClueState, RegistryCounter

log = logging.getLogger("tipline.registry.seed")

UNIT_NAMES = [
    "区公安分局",
    "城东派出所",
    "城西派出所",
    "城南派出所",
    "城北派出所",
    "交警大队",
    "刑侦大队",
    "治安大队",
    "区人民法院",
    "区法院执行局",
    "区人民检察院",
    "区司法局",
    "城东司法所",
    "区看守所",
    "区拘留所",
    "区委政法委",
]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
POSITIONS = ["民警", "辅警", "副所长", "所长", "法官", "执行员", "检察官", "书记员", "管教民警", "科员"]
RANKS = ["一级警长", "二级警长", "四级高级警长", "三级法官", "四级检察官", "科员", ""]
TEXTS = [
    ("interference", "{who}在办理我家的案件时收了对方的红包，还找人打招呼，案子一直压着不办。"),
    ("case_suppression", "去{unit}报案，{who}说不归他们管，不给回执，报警没人管，石沉大海。"),
    ("illegal_business", "{who}的老婆开公司，承揽辖区工程，他在里面当挂名股东，照顾生意。"),
    ("enforcement_misconduct", "{who}吃拿卡要，乱罚款，开车被扣后要交两千块好处费才放车。"),
    ("gang_protection", "{who}给赌场通风报信，每次检查前都提前打招呼，是黑社会的保护伞。"),
    ("sentence_mod_abuse", "听说交二十万就能办保外就医，{who}帮忙做了假病历，一天牢没坐。"),
    ("work_style", "{who}上班时间喝酒，还公车私用，接待群众态度恶劣，门难进脸难看。"),
    ("vice", "{who}经常在棋牌室打牌赌钱，一晚上输赢上万。"),
    ("former_officer_lawyer", "退休的{who}现在当律师，专门代理原单位的案子，说包赢，收疏通费。"),
    ("other", "邻居家装修噪音太大，物业不管，希望帮忙协调。"),
]
STATUS_WEIGHTS = [
    ("registered", 30), ("triaged", 12), ("transferred", 5), ("verifying", 25), ("disposed", 10),
    ("concluded", 12), ("referred", 4), ("archived", 2),
]  # fmt: skip
CHANNELS = [("web", 45), ("email", 15), ("hotline", 20), ("letter", 12), ("visit", 8)]


@dataclass(frozen=True)
class SeedReport:
    clues: int
    seconds: float
    units: int
    investigators: int


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> Callable[[], str]:
    names = [n for n, _ in pairs]
    weights = [w for _, w in pairs]
    return lambda: rng.choices(names, weights)[0]


async def _ensure_people(
    session: AsyncSession, investigators: int, keys: KeyRing
) -> tuple[list[Unit], list[Staff]]:
    units = []
    for name in UNIT_NAMES:
        unit = await session.scalar(select(Unit).where(Unit.name == name))
        if unit is None:
            unit = await auth_service.add_unit(session, name=name, kind="other", parent_id=None, actor="seed")
        units.append(unit)
    staff = []
    handling = [u for u in units if u.name in ("区委政法委", "区公安分局", "区人民检察院", "区司法局")]
    for n in range(investigators):
        name = f"seed-investigator-{n:03d}"
        person = await session.scalar(select(Staff).where(Staff.name == name))
        if person is None:
            person, _ = await auth_service.add_staff(
                session,
                name=name,
                roles=["investigator"],
                unit_id=handling[n % len(handling)].id,
                actor="seed",
                keys=keys,
            )
        staff.append(person)
    for name in ("seed-supervisor", "seed-leader"):
        if await session.scalar(select(Staff).where(Staff.name == name)) is None:
            await auth_service.add_staff(
                session, name=name, roles=["supervisor"], unit_id=units[-1].id, actor="seed", keys=keys
            )
    await session.flush()
    return units, staff


@dataclass
class _Holders:
    """The public keys a seeded clue's content key is wrapped to: at registration (the escrow, every
    supervisor: seeded accused units are never a supervisor's), and once assigned (the assignee's keys,
    the handling unit's key)."""

    at_registration: list[tuple[AnyPublicKey, str]]
    people: dict[str, list[AnyPublicKey]]
    units: dict[str, AnyPublicKey]

    def assigned(self, assignee: Staff) -> list[tuple[AnyPublicKey, str]]:
        unit = self.units.get(assignee.unit_id or "")
        return [(key, "assignee") for key in self.people.get(assignee.id, [])] + (
            [(unit, "unit")] if unit is not None else []
        )


def _holders(session: Session, keys: KeyRing, staff: list[Staff]) -> _Holders:
    escrow = compartments.escrow_key(session, keys)
    found = [escrow] if escrow is not None else []
    found += [recipient for _, recipient in keyholders.supervisors(session)]
    people = {
        staff_id: [compartment_keys.public_from_json(row.public) for row in rows]
        for staff_id, rows in compartments.staff_keys(session, [p.id for p in staff]).items()
    }
    units = {}
    for unit_id in {p.unit_id for p in staff if p.unit_id}:
        row = compartments.unit_key(session, unit_id)
        if row is not None:
            units[unit_id] = compartment_keys.public_from_json(row.public)
    return _Holders([(compartment_keys.public_from_json(r.public), r.reason) for r in found], people, units)


async def _reserve_numbers(session: AsyncSession, prefix: str, year: int, count: int) -> int:
    insert_ = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert_(RegistryCounter)
        .values(prefix=prefix, year=year, last_value=count)
        .on_conflict_do_update(
            index_elements=[RegistryCounter.prefix, RegistryCounter.year],
            set_={"last_value": RegistryCounter.last_value + count},
        )
        .returning(RegistryCounter.last_value)
    )
    return (await session.execute(statement)).scalar_one() - count + 1


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


async def seed_clues(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    keys: KeyRing,
    accused_index_key: bytes,  # runtime.lookup_key("accused-index"): search finds seeded officers
    words_key: bytes,  # runtime.lookup_key(recusal.WORDS_KEY_LABEL): recusal asks the seeded digests
    count: int,
    prefix: str,
    investigators: int = 60,
    batch: int = 5000,
    seed: int = 20260301,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    started = time.perf_counter()
    rng = random.Random(seed)
    async with session_factory() as session:
        units, staff = await _ensure_people(session, investigators, keys)
        await session.commit()
    async with session_factory() as session:
        holders = await session.run_sync(lambda s: _holders(s, keys, staff))
        await session.commit()
    pick_status = _weighted(rng, STATUS_WEIGHTS)
    pick_channel = _weighted(rng, CHANNELS)
    # Officers reported, some of them again and again (a long tail of repeat reports).
    officers = [
        (rng.choice(SURNAMES) + rng.choice("某明华军伟强磊洋勇艳杰涛斌超"), rng.choice(units[:-1]))
        for _ in range(max(50, count // 4))
    ]
    now = datetime.now(UTC)
    year = now.year
    async with session_factory() as session:
        number = await _reserve_numbers(session, prefix, year, count)
        await session.commit()

    def make_batch(first: int, size: int) -> tuple[list[dict[str, Any]], ...]:
        # Runs in a worker thread: sealing overlaps the previous batch's COPY on the event loop.
        with sealing_batch():  # one KEM operation per recipient key for the whole batch
            return _make_batch(first, size)

    def _make_batch(first: int, size: int) -> tuple[list[dict[str, Any]], ...]:
        clue_rows: list[dict[str, Any]] = []
        category_rows: list[dict[str, Any]] = []
        state_rows: list[dict[str, Any]] = []
        sealed_rows: list[dict[str, Any]] = []
        wrap_rows: list[dict[str, Any]] = []
        for n in range(size):
            clue_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            # A few officers are reported again and again: 30% of reports name one of the top 1%.
            pool = len(officers) // 100 + 1 if rng.random() < 0.3 else len(officers)
            name, unit = officers[rng.randrange(pool)]
            category, template = rng.choice(TEXTS)
            who = name + rng.choice(POSITIONS)
            text = template.format(who=who, unit=unit.name)
            accused = {
                "name": name,
                "unit": unit.name,
                "position": rng.choice(POSITIONS),
                "rank": rng.choice(RANKS) or None,
                "region": "城东区",
            }
            received = now - timedelta(seconds=rng.randrange(0, 365 * 86400))
            status = pick_status() if category != "other" else rng.choice(["registered", "referred"])
            assignee = rng.choice(staff) if status not in ("registered", "referred") else None
            channel = pick_channel()
            key = hmac.new(accused_index_key, f"{name}\x00{unit.name}".encode(), hashlib.sha256).hexdigest()
            fields = {
                "content": _dump({"text": text, "incident": {}, "category_hint": None, "details": {}}),
                "accused": _dump(accused),
                "classification": _dump({"labels": [category], "seed": True}),
            }
            sealed = compartment_keys.seal_clue(clue_id, keys.case_public.suite, fields)
            sealed_rows.append({"clue_id": clue_id, "public": sealed.public, **sealed.fields})
            recipients = holders.at_registration + (holders.assigned(assignee) if assignee else [])
            wrap_rows += [
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "clue_id": clue_id,
                    "key_id": public.key_id,
                    "reason": reason,
                    "wrapped": compartment_keys.wrap_content_key(public, clue_id, sealed.content_key),
                    "created_at": received + timedelta(minutes=1),
                }
                for public, reason in recipients
            ]
            clue_rows.append(
                {
                    "id": clue_id,
                    "registry_number": f"{prefix}-{year}-{first + n:06d}",
                    "source": "public_report",
                    "channel": channel,
                    "status": status,
                    "real_name": rng.random() < 0.3,
                    "received_at": received,
                    "registered_at": received + timedelta(minutes=1),
                    "due_at": received + timedelta(days=30 + rng.randrange(0, 20)),
                    "needs_triage": status == "registered",
                    "taxonomy_version": "seed",
                    **dict.fromkeys(fields, NO_CASE_COPY),  # compartmented like intake: no case-key copy
                    "identity": None,  # seed clues have no submitter
                    "accused_key": key,
                    "accused_words": recusal.keyed_words(accused, key=words_key),
                    "accused_unit_id": unit.id,
                    "handling_unit_id": assignee.unit_id if assignee else None,
                    "assignee_id": assignee.id if assignee else None,
                    "assigned_at": received + timedelta(days=1) if assignee else None,
                }
            )
            category_rows.append({"clue_id": clue_id, "category": category})
            if status in ("disposed", "concluded", "archived", "referred"):
                concluded = status in ("concluded", "archived")
                state_rows.append(
                    {
                        "clue_id": clue_id,
                        "stage_started_at": received + timedelta(days=5),
                        "disposal_method": None
                        if status == "referred"
                        else rng.choice(["inquiry", "verification", "shelve", "close"]),
                        "disposed_at": received + timedelta(days=10),
                        "approver_id": None,
                        "finding": rng.choice(["substantiated", "partly", "unfounded", "no_evidence"])
                        if concluded
                        else None,
                        "concluded_at": received + timedelta(days=rng.randrange(15, 60))
                        if concluded
                        else None,
                        "feedback_at": None,
                        "cleared": False,
                        "referral_target": "12345" if status == "referred" else None,
                        "referred_at": received + timedelta(days=3) if status == "referred" else None,
                        "routing_rule_id": None,
                        "key_clue": rng.random() < 0.05,
                        "supervising_leader_id": None,
                        "leader_takes_case": False,
                        "difficult": rng.random() < 0.02,
                        "near_signature": None,
                    }
                )
        return clue_rows, category_rows, state_rows, sealed_rows, wrap_rows

    async def store(batch_rows: tuple[list[dict[str, Any]], ...]) -> None:
        tables = (
            Clue.__table__,
            ClueCategory.__table__,
            ClueState.__table__,
            ClueSealed.__table__,
            ClueKeyWrap.__table__,
        )
        async with session_factory() as session:
            for table, rows in zip(tables, batch_rows, strict=True):
                await _bulk_insert(session, table, rows)
            await session.commit()

    done = 0
    pending: asyncio.Task[None] | None = None
    while done < count:
        size = min(batch, count - done)
        rows = await asyncio.to_thread(make_batch, number + done, size)
        if pending is not None:
            await pending
        pending = asyncio.create_task(store(rows))
        done += size
        if progress:
            progress(done)
    if pending is not None:
        await pending
    return SeedReport(done, time.perf_counter() - started, len(units), len(staff))


async def _bulk_insert(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if session.bind.dialect.name == "postgresql":
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        columns = list(rows[0])
        await raw.copy_records_to_table(
            table.name, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
        )
    else:
        await session.execute(insert(table), rows)
