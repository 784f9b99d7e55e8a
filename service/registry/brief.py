"""The regular meeting brief (例会协商): new, overdue, key and difficult clues for a date range.
Ledger facts only (numbers, statuses, units, handlers, dates): no content, no identity."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.audit import service as audit_service
from service.auth.models import Staff, Unit
from service.auth.service import Principal
from service.platform.timeutil import utcnow
from service.registry import categories as taxonomy_categories
from service.registry.deadlines import alert_level
from service.registry.ledger import (
    ExportFile,
    _local,
    _short_name,
    dated_filename,
    export_title,
    prepare_sheet,
    private_tmpdir,
)
from service.registry.lifecycle import OPEN_STATUSES, STATUS_NAMES
from service.registry.models import Clue, ClueState, Consultation

SECTIONS = {
    "new": "新收线索",
    "overdue": "超期线索",
    "key": "重点督办线索",
    "difficult": "疑难会商线索",
}
MAX_PER_SECTION = 2000


async def meeting_brief(session: AsyncSession, *, start: datetime, end: datetime) -> dict[str, Any]:
    now = utcnow()
    units = dict((await session.execute(select(Unit.id, Unit.name))).all())
    staff = dict((await session.execute(select(Staff.id, Staff.name))).all())
    open_values = [s.value for s in OPEN_STATUSES]
    base = (
        select(Clue, ClueState)
        .outerjoin(ClueState, ClueState.clue_id == Clue.id)
        .options(selectinload(Clue.categories))
        .order_by(Clue.due_at)
        .limit(MAX_PER_SECTION)
    )
    queries = {
        "new": base.where(Clue.received_at >= start, Clue.received_at < end),
        "overdue": base.where(Clue.status.in_(open_values), Clue.due_at < now).where(
            (ClueState.disposal_method.is_(None)) | (ClueState.disposal_method != "shelve")
        ),
        "key": base.where(Clue.status.in_(open_values), ClueState.key_clue.is_(True)),
        "difficult": base.where(
            Clue.id.in_(
                select(Consultation.clue_id).where(Consultation.held_on >= start, Consultation.held_on < end)
            )
            | ((ClueState.difficult.is_(True)) & Clue.status.in_(open_values))
        ),
    }
    sections: dict[str, list[dict[str, Any]]] = {}
    for name, query in queries.items():
        sections[name] = [
            {
                "id": clue.id,
                "registry_number": clue.registry_number,
                "status": clue.status,
                "status_name": STATUS_NAMES.get(clue.status, clue.status),
                "categories": sorted(c.category for c in clue.categories),
                "received_on": _local(clue.received_at),
                "due_on": _local(clue.due_at),
                "overdue": clue.status in open_values and clue.due_at < now,
                "alert": alert_level(
                    (state.stage_started_at if state else None) or clue.registered_at, clue.due_at, now
                ).value
                if clue.status in open_values
                else None,
                "handling_unit": units.get(clue.handling_unit_id or "", ""),
                "handler": staff.get(clue.assignee_id or "", ""),
                "supervising_leader": staff.get((state.supervising_leader_id if state else None) or "", ""),
            }
            for clue, state in (await session.execute(query)).unique().all()
        ]
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "counts": {name: len(items) for name, items in sections.items()},
        "sections": sections,
    }


COLUMNS = [
    ("registry_number", "编号"),
    ("status_name", "状态"),
    ("overdue", "是否超期"),
    ("categories", "问题类别"),
    ("received_on", "收到日期"),
    ("due_on", "办理期限"),
    ("handling_unit", "承办单位"),
    ("handler", "承办人"),
    ("supervising_leader", "督办领导"),
]
WIDTHS = {
    "编号": 18, "状态": 10, "是否超期": 10, "问题类别": 30, "收到日期": 12, "办理期限": 12,
    "承办单位": 22, "承办人": 12, "督办领导": 12,
}  # fmt: skip


def _cell(item: dict[str, Any], key: str, names: dict[str, str]) -> Any:
    if key == "categories":
        return "、".join(names.get(c, c) for c in item[key])
    if key == "overdue":
        return "是" if item[key] else "否"
    return item[key]


async def brief_xlsx(
    session: AsyncSession, *, start: datetime, end: datetime, principal: Principal
) -> ExportFile:
    from openpyxl import Workbook
    from openpyxl.worksheet import _writer as sheet_writer

    brief = await meeting_brief(session, start=start, end=end)
    names = {k: _short_name(v) for k, v in taxonomy_categories.category_names().items()}
    now = utcnow()
    period = {"日期": f"{_local(start)}至{_local(end - timedelta(seconds=1))}"}
    directory = private_tmpdir()
    path = Path(directory) / "brief.xlsx"
    workbook = Workbook(write_only=True)
    headers = [zh for _, zh in COLUMNS]
    for name, title in SECTIONS.items():
        sheet = workbook.create_sheet(title)
        handle, sheet_xml = tempfile.mkstemp(prefix="sheet-", suffix=".xml", dir=directory)
        os.close(handle)
        sheet_writer.ALL_TEMP_FILES.append(sheet_xml)
        sheet._writer = sheet_writer.WorksheetWriter(sheet, out=sheet_xml)
        prepare_sheet(sheet, headers, WIDTHS, export_title(f"例会简报·{title}", period, now))
        for item in brief["sections"][name]:
            sheet.append([_cell(item, k, names) for k, _ in COLUMNS])
    workbook.save(path)
    await audit_service.record(
        session,
        actor=principal.actor,
        action="brief.exported",
        object_type="registry",
        object_id="brief",
        details={"from": brief["from"], "to": brief["to"], "counts": brief["counts"]},
    )
    return ExportFile(
        path,
        sum(brief["counts"].values()),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        dated_filename("例会简报", "xlsx", now),
    )
