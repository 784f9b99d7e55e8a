"""The ledger (台账) export: the domain's ledger columns as xlsx (openpyxl write-only) or CSV.

Invariants:
- The submitter's identity envelope is never read: the query does not even select it. Real-name is a yes/no.
- Nor is the report's text: the summary column is built from the accused unit and the categories, because
  reporters write identifying details about themselves into the text.
- Nothing is decrypted (compartments, issue 19): a ledger opens no report, so a bulk export needs no master
  key and holds nothing a clue's own key protects. The accused columns come from plain columns only: the
  unit is the registered unit the reporter's words named exactly (``clues.accused_unit_id``); the accused
  person's name, position, rank and region are report content, shown on the clue's page to its readers.
- The export is audited (filters, format, row count) in the caller's transaction.
- Rows are streamed from the database in batches and written straight out; nothing holds the whole ledger.
- openpyxl's write-only mode needs a temporary file for the sheet; it and the finished file live in a
  private (0700) directory on tmpfs (``/dev/shm``) when there is one, so the plaintext never reaches a disk,
  and are deleted when the response has been sent (``ExportFile.cleanup``).
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service as audit_service
from service.audit.models import AuditEntry
from service.auth.models import Staff, Unit
from service.auth.service import Principal
from service.platform.timeutil import LOCAL, as_utc, utcnow
from service.registry import categories as taxonomy_categories
from service.registry.lifecycle import (
    DISPOSAL_METHODS,
    FINDINGS,
    REFERRAL_TARGETS,
    SEND_ON_KINDS,
    STATUS_NAMES,
)
from service.registry.models import Clue, ClueCategory, ClueState
from service.registry.service import ClueFilters, _apply_filters

SOURCE_NAMES = {
    "public_report": "群众举报",
    "superior_assigned": "上级交办",
    "self_inspection": "本级自查",
    "voluntary_confession": "主动坦白",
}
CHANNEL_NAMES = {
    "web": "网络",
    "email": "邮件",
    "hotline": "电话",
    "letter": "来信",
    "visit": "来访",
    "staff": "工作人员",
}
METHOD_NAMES = {**DISPOSAL_METHODS, **SEND_ON_KINDS}
BATCH = 1000
IN_FLIGHT = 2  # batches handed to the helper process ahead of the one being written
log = logging.getLogger("tipline.registry.ledger")

# The one list of ledger columns (domain.md), in its order: (Chinese header, English header).
COLUMNS: list[tuple[str, str]] = [
    ("编号", "number"),
    ("来源", "source"),
    ("渠道", "channel"),
    ("收到时间", "received"),
    ("登记人", "registered by"),
    ("被反映人", "accused name"),
    ("单位", "accused unit"),
    ("职务", "position"),
    ("职级", "rank"),
    ("地区", "region"),
    ("主要问题摘要", "summary"),
    ("问题类别", "categories"),
    ("实名/匿名", "real name or anonymous"),
    ("重复举报", "repeat"),
    ("承办单位", "handling unit"),
    ("承办人", "handler"),
    ("处置方式", "disposal method"),
    ("审批人", "approver"),
    ("办理期限", "deadline"),
    ("是否督办", "supervised"),
    ("督办领导", "supervising leader"),
    ("状态", "status"),
    ("办理结果", "result"),
    ("办结日期", "closing date"),
    ("反馈情况", "feedback"),
]
# Column widths in the xlsx (characters; a CJK character counts about two).
WIDTHS = {
    "编号": 18, "来源": 10, "渠道": 8, "收到时间": 17, "登记人": 12, "被反映人": 10, "单位": 22,
    "职务": 12, "职级": 10, "地区": 10, "主要问题摘要": 44, "问题类别": 26, "实名/匿名": 10,
    "重复举报": 10, "承办单位": 20, "承办人": 10, "处置方式": 14, "审批人": 10, "办理期限": 12,
    "是否督办": 10, "督办领导": 14, "状态": 10, "办理结果": 22, "办结日期": 12, "反馈情况": 22,
}  # fmt: skip


def safe_cell(value: Any) -> Any:
    """Reporter-written text must never become a spreadsheet formula (CSV/xlsx injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _local(moment: datetime | None, with_time: bool = False) -> str:
    if moment is None:
        return ""
    local = as_utc(moment).astimezone(LOCAL)
    return local.strftime("%Y-%m-%d %H:%M") if with_time else local.strftime("%Y-%m-%d")


@dataclass
class _Lookups:
    units: dict[str, str]
    staff: dict[str, str]
    repeated: set[str]


async def _lookups(session: AsyncSession) -> _Lookups:
    units = dict((await session.execute(select(Unit.id, Unit.name))).all())
    staff = dict((await session.execute(select(Staff.id, Staff.name))).all())
    repeated = set(
        (
            await session.execute(
                select(Clue.accused_key)
                .where(Clue.accused_key.is_not(None))
                .group_by(Clue.accused_key)
                .having(func.count() > 1)
            )
        ).scalars()
    )
    return _Lookups(units, staff, repeated)


def _short_name(name: str) -> str:
    return name.replace("（", "(").split("(")[0].strip()


def _summary(unit: str | None, labels: list[str], names: dict[str, str]) -> str:
    """The ledger's one-line summary, built from the accused unit (as registered) and the categories.

    Deliberately not an excerpt of the report: reporters write their own names, relatives and
    addresses into the text, and an export travels further than the clue page (domain.md: the
    ledger never carries a submitter detail)."""
    who = f"{unit}有关人员" if unit else "有关人员"
    issues = "、".join(names.get(label, label) for label in labels if label != "other")
    return f"反映{who}涉嫌{issues}问题" if issues else f"反映{who}有关问题（不属于受理范围）"


def _registrar(channel: str, staff: dict[str, str], actor: str | None) -> str:
    if actor and actor.startswith("staff:"):
        return staff.get(actor[6:], actor)
    return "系统自动登记" if channel in ("web", "email") else "工作人员登记"


async def ledger_rows(
    session: AsyncSession, *, filters: ClueFilters, limit: int | None = None
) -> AsyncIterator[list[Any]]:
    """The ledger's rows in the order of ``COLUMNS``, newest first (empty cells are None). Opens nothing:
    plain columns only, never ``clues.identity``, the accused details or the report text."""
    lookups = await _lookups(session)
    names = {id_: _short_name(name) for id_, name in taxonomy_categories.category_names().items()}
    query = (
        select(
            Clue.id,
            Clue.registry_number,
            Clue.source,
            Clue.channel,
            Clue.status,
            Clue.received_at,
            Clue.real_name,
            Clue.accused_key,
            Clue.handling_unit_id,
            Clue.assignee_id,
            Clue.due_at,
            Clue.accused_unit_id,
            ClueState.disposal_method,
            ClueState.approver_id,
            ClueState.key_clue,
            ClueState.supervising_leader_id,
            ClueState.leader_takes_case,
            ClueState.finding,
            ClueState.concluded_at,
            ClueState.feedback_at,
            ClueState.referral_target,
            AuditEntry.actor.label("registered_by"),
        )
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .outerjoin(AuditEntry, and_(AuditEntry.object_id == Clue.id, AuditEntry.action == "clue.registered"))
        .order_by(Clue.received_at.desc(), Clue.id.desc())
    )
    query = _apply_filters(query, filters)  # type: ignore[arg-type]
    if limit:
        query = query.limit(limit)
    result = await session.stream(query.execution_options(yield_per=BATCH))
    async for batch in result.partitions(BATCH):
        categories: dict[str, list[str]] = {}
        ids = [row.id for row in batch]
        rows = await session.execute(
            select(ClueCategory.clue_id, ClueCategory.category).where(ClueCategory.clue_id.in_(ids))
        )
        for clue_id, category in rows.all():
            categories.setdefault(clue_id, []).append(category)
        for row in _ledger_batch(batch, categories, lookups=lookups, names=names):
            yield row


def _ledger_batch(
    batch: Any, categories: dict[str, list[str]], *, lookups: _Lookups, names: dict[str, str]
) -> list[list[Any]]:
    rows = []
    for row in batch:
        unit = lookups.units.get(row.accused_unit_id or "") or None
        labels = sorted(categories.get(row.id, []))
        result_text = FINDINGS.get(row.finding or "", "")
        if row.status == "referred":
            target = REFERRAL_TARGETS.get(row.referral_target or "", (row.referral_target, ""))[0]
            result_text = f"转{target}"
        leader = lookups.staff.get(row.supervising_leader_id or "", "")
        rows.append(
            [
                row.registry_number,
                SOURCE_NAMES.get(row.source, row.source),
                CHANNEL_NAMES.get(row.channel, row.channel),
                _local(row.received_at, with_time=True),
                _registrar(row.channel, lookups.staff, row.registered_by),
                None,  # the accused's name, position, rank, region: report content (module docstring)
                unit,
                None,
                None,
                None,
                _summary(unit, labels, names),
                "、".join(names.get(label, label) for label in labels),
                "实名" if row.real_name else "匿名",
                "是" if row.accused_key in lookups.repeated else "否",
                lookups.units.get(row.handling_unit_id or "") or None,
                lookups.staff.get(row.assignee_id or "") or None,
                METHOD_NAMES.get(row.disposal_method or "") or None,
                lookups.staff.get(row.approver_id or "") or None,
                _local(row.due_at),
                "是" if row.key_clue else "否",
                (leader + ("（包案）" if row.leader_takes_case else "")) if leader else None,
                STATUS_NAMES.get(row.status, row.status),
                result_text or None,
                _local(row.concluded_at) or None,
                f"已反馈（{_local(row.feedback_at)}）" if row.feedback_at else None,
            ]
        )
    return rows


@dataclass
class ExportFile:
    path: Path
    rows: int
    media_type: str
    filename: str

    def cleanup(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def private_tmpdir() -> Path:
    """A 0700 directory on tmpfs when the machine has one (RAM, never a disk), else the system temp."""
    shm = "/dev/shm"  # noqa: S108 - a private mkdtemp directory inside it, not a shared path
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="tipline-export-", dir=base))


async def _pump(
    rows: AsyncIterator[list[Any]],
    begin: Callable[[], Any],
    write: Callable[[list[Any]], None],
    finish: Callable[[], None],
) -> int:
    """Hand the rows to one writer thread in batches: the thread writes batch N while the event loop reads
    and formats batch N+1 (and the helper process decrypts further ahead). ``begin``, ``write`` and
    ``finish`` all run in that same thread (lxml's incremental writer stays in one thread); at most one
    batch waits for it, so memory stays flat."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
    try:
        await loop.run_in_executor(executor, begin)
        pending: asyncio.Future[None] | None = None
        chunk: list[list[Any]] = []
        count = 0
        async for row in rows:
            chunk.append(row)
            count += 1
            if len(chunk) >= BATCH:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(executor, write, chunk)
                chunk = []
        if pending is not None:
            await pending
        if chunk:
            await loop.run_in_executor(executor, write, chunk)
        await loop.run_in_executor(executor, finish)
        return count
    finally:
        executor.shutdown(wait=True)


def prepare_sheet(sheet: Any, headers: list[str], widths: dict[str, int], title: str | None) -> None:
    """Before the first row: column widths and the header frozen below the title row (openpyxl's
    write-only sheets take both only before anything is written); then the title and the header."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    for index, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = widths.get(header, 12)
    sheet.freeze_panes = "A3" if title else "A2"
    sheet._writer.write_top()
    if title:
        sheet.append([_styled(WriteOnlyCell(sheet, value=title), Font(bold=True, size=13))])
    sheet.append([_styled(WriteOnlyCell(sheet, value=h), Font(bold=True)) for h in headers])


def _styled(cell: Any, font: Any) -> Any:
    cell.font = font
    return cell


def export_title(name: str, filters: dict[str, str], moment: datetime) -> str:
    """The first row of an export: what it is, the filters (in words) and when it was made."""
    chosen = "；".join(f"{k}：{v}" for k, v in filters.items() if v) or "全部"
    return f"{name}（筛选条件：{chosen}）　导出时间：{_local(moment, with_time=True)}"


def dated_filename(stem: str, extension: str, moment: datetime) -> str:
    return f"{stem}_{_local(moment)}.{extension}"


async def write_xlsx(
    rows: AsyncIterator[list[Any]], path: Path, *, title: str = "线索台账", heading: str | None = None
) -> int:
    from openpyxl import Workbook
    from openpyxl.worksheet import _writer as sheet_writer

    # The sheet's temporary XML is plaintext: give openpyxl a file in the private directory instead of
    # letting it make one in the system temp (set per sheet, so concurrent exports do not interfere).
    handle, sheet_xml = tempfile.mkstemp(prefix="sheet-", suffix=".xml", dir=path.parent)
    os.close(handle)
    sheet_writer.ALL_TEMP_FILES.append(sheet_xml)
    workbook = Workbook(write_only=True)
    state: dict[str, Any] = {}

    def begin() -> None:
        sheet = workbook.create_sheet(title)
        sheet._writer = sheet_writer.WorksheetWriter(sheet, out=sheet_xml)
        prepare_sheet(sheet, [zh for zh, _ in COLUMNS], WIDTHS, heading)
        state["sheet"] = sheet

    def write(chunk: list[list[Any]]) -> None:
        append = state["sheet"].append
        for row in chunk:
            append([safe_cell(v) for v in row])

    return await _pump(rows, begin, write, lambda: workbook.save(path))


async def write_csv(rows: AsyncIterator[list[Any]], path: Path) -> int:
    handle = path.open("w", encoding="utf-8-sig", newline="")  # BOM: Excel opens it as UTF-8
    try:
        writer = csv.writer(handle)

        def write(chunk: list[list[Any]]) -> None:
            writer.writerows([safe_cell(v) for v in row] for row in chunk)

        return await _pump(rows, lambda: writer.writerow([zh for zh, _ in COLUMNS]), write, handle.flush)
    finally:
        handle.close()


async def export_ledger(
    session: AsyncSession,
    *,
    filters: ClueFilters,
    fmt: str,
    principal: Principal,
    limit: int | None = None,
    read_session: AsyncSession | None = None,
) -> ExportFile:
    """Write the ledger to a private temporary file and audit the export; the caller streams the file and
    calls ``cleanup()`` afterwards. The rows are read through ``read_session`` when given (the replica),
    the audit entry is written through ``session``."""
    now = utcnow()
    heading = export_title("线索台账", await describe_filters(session, filters), now)
    directory = private_tmpdir()
    path = directory / f"ledger.{fmt}"
    try:
        rows = ledger_rows(read_session or session, filters=filters, limit=limit)
        if fmt == "xlsx":
            count = await write_xlsx(rows, path, heading=heading)
        else:
            count = await write_csv(rows, path)  # a header line only: CSV is read by programs too
        await audit_service.record(
            session,
            actor=principal.actor,
            action="ledger.exported",
            object_type="registry",
            object_id="ledger",
            details={
                "format": fmt,
                "rows": count,
                "filters": {k: str(v) for k, v in vars(filters).items() if v is not None},
            },
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    media = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if fmt == "xlsx"
        else "text/csv; charset=utf-8"
    )
    return ExportFile(path, count, media, dated_filename("线索台账", fmt, now))


async def describe_filters(session: AsyncSession, filters: ClueFilters) -> dict[str, str]:
    """The ledger filters in words, for an export's title row."""
    unit_name = await session.get(Unit, filters.unit_id) if filters.unit_id else None
    categories = taxonomy_categories.category_names()
    received = [_local(filters.received_from), _local(filters.received_to)]
    return {
        "状态": STATUS_NAMES.get(filters.status or "", filters.status or ""),
        "问题类别": _short_name(categories.get(filters.category or "", filters.category or "")),
        "来源": SOURCE_NAMES.get(filters.source or "", filters.source or ""),
        "渠道": CHANNEL_NAMES.get(filters.channel or "", filters.channel or ""),
        "承办单位": unit_name.name if unit_name else "",
        "收到日期": "至".join(received) if any(received) else "",
    }
