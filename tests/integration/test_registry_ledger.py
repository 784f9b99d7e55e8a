"""Ledger export (xlsx opened cell by cell, CSV), statistics and the meeting brief, on both databases."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from openpyxl import load_workbook
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.registry.ledger import COLUMNS
from service.registry.models import Clue
from tests.helpers.app import Harness, auth, unique
from tests.helpers.registry import make_world, step

TODAY = date.today()
SUBMITTER = {"name": "李四维", "phone": "13912345678", "email": "lisiwei@example.com", "address": "幸福路8号"}


async def make_ledger(harness: Harness):  # type: ignore[no-untyped-def]
    world = await make_world(harness)
    accused = unique("钱")
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": "我是李四维，电话13912345678。民警收受红包，打招呼让案子不立案。",
            "accused": {
                "name": accused,
                "unit": world.accused_unit_name,
                "position": "副所长",
                "rank": "一级警长",
                "region": "城东区",
            },
            "anonymous": False,
            "submitter": {k: SUBMITTER[k] for k in ("name", "phone", "email")},
        },
    )
    assert response.status_code == 201, response.text
    number = response.json()["registry_number"]
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": '=HYPERLINK("http://x") 法官吃请。',
            "accused": {"name": "=1+1", "unit": world.accused_unit_name},
        },
    )
    injected = response.json()["registry_number"]
    async with harness.runtime.session_factory() as session:
        ids = {
            n: await session.scalar(select(Clue.id).where(Clue.registry_number == n))
            for n in (number, injected)
        }
    sup = world.supervisor[1]
    for clue_id in ids.values():
        assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    clue_id = ids[number]
    assert (await step(harness, clue_id, world.investigator[1], "accept")).status_code == 201
    response = await step(
        harness,
        clue_id,
        world.investigator[1],
        "dispose",
        method="verification",
        approver_id=world.approver[0],
        decision_on=TODAY.isoformat(),
    )
    assert response.status_code == 201
    response = await harness.client.put(
        f"/api/v1/clues/{clue_id}/supervision",
        headers=auth(sup),
        json={"key_clue": True, "leader_id": world.approver[0], "leader_takes_case": True, "reason": "重点"},
    )
    assert response.status_code == 200
    return world, accused, number, injected


async def test_xlsx_ledger_cell_by_cell_without_submitter_details(harness: Harness) -> None:
    world, accused, number, injected = await make_ledger(harness)
    sup = auth(world.supervisor[1])
    for token in (world.investigator[1], world.admin[1], world.operator[1]):
        response = await harness.client.get("/api/v1/ledger.xlsx", headers=auth(token))
        assert response.status_code == 403
    assert (await harness.client.get("/api/v1/ledger.pdf", headers=sup)).status_code == 422
    response = await harness.client.get(
        "/api/v1/ledger.xlsx", headers=sup, params={"unit_id": world.handling_unit}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    width = len(COLUMNS)  # empty trailing cells are not stored: pad them back
    title, *rows = [list(r) + [None] * (width - len(r)) for r in workbook.active.iter_rows(values_only=True)]
    assert title[0].startswith("线索台账（筛选条件：承办单位：") and "导出时间" in title[0]
    assert rows[0] == [zh for zh, _ in COLUMNS]
    assert len(rows) == 3
    assert response.headers["content-disposition"].endswith(".xlsx")
    row = dict(zip([zh for zh, _ in COLUMNS], next(r for r in rows if r[0] == number), strict=True))
    assert row["来源"] == "群众举报" and row["渠道"] == "网络" and row["登记人"] == "系统自动登记"
    assert row["收到时间"].startswith(TODAY.isoformat()[:4])
    # Plain columns only (compartments): the registered accused unit; the person's details are report content.
    assert (row["被反映人"], row["单位"], row["职务"], row["职级"], row["地区"]) == (
        None,
        world.accused_unit_name,
        None,
        None,
        None,
    )
    assert row["主要问题摘要"].startswith(f"反映{world.accused_unit_name}有关人员涉嫌")
    assert row["实名/匿名"] == "实名" and row["重复举报"] == "否"
    assert row["承办单位"] and row["承办人"].startswith("inv-")
    assert row["处置方式"] == "初步核实" and row["审批人"].startswith("lead-")
    assert row["是否督办"] == "是" and row["督办领导"].endswith("（包案）")
    assert (
        row["办理期限"]
        and row["状态"] == "已处置"
        and row["办理结果"] is None
        and row["办结日期"] is None
        and row["反馈情况"] is None
    )
    other = next(r for r in rows if r[0] == injected)
    assert not any(str(c).startswith("=") for c in other if c is not None)  # never a formula
    everything = " ".join(str(c) for r in rows for c in r if c is not None)
    for secret in (*SUBMITTER.values(), accused, "副所长", "一级警长", "城东区"):
        assert secret not in everything
    async with harness.runtime.session_factory() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "ledger.exported").order_by(AuditEntry.id.desc())
        )
        assert entry.actor == f"staff:{world.supervisor[0]}" and '"rows":2' in entry.details


async def test_csv_ledger_has_the_same_rows(harness: Harness) -> None:
    world, accused, number, _ = await make_ledger(harness)
    response = await harness.client.get(
        "/api/v1/ledger.csv", headers=auth(world.supervisor[1]), params={"unit_id": world.handling_unit}
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [zh for zh, _ in COLUMNS] and len(rows) == 3
    assert any(r[0] == number and r[6] == world.accused_unit_name for r in rows)
    text = response.content.decode("utf-8-sig")
    assert not any(secret in text for secret in (*SUBMITTER.values(), accused))


async def test_the_ledger_opens_nothing(harness: Harness) -> None:
    """Compartments: the ledger is written from plain columns, so it is the same with every sealed field
    of every clue destroyed (it never needs a key, and holds nothing a clue's key protects)."""
    from sqlalchemy import update

    world, _, _, _ = await make_ledger(harness)

    async def export() -> list[list[str]]:
        response = await harness.client.get(
            "/api/v1/ledger.csv", headers=auth(world.supervisor[1]), params={"unit_id": world.handling_unit}
        )
        assert response.status_code == 200, response.text
        return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))

    before = await export()
    async with harness.runtime.session_factory() as session:
        await session.execute(
            update(Clue)
            .where(Clue.handling_unit_id == world.handling_unit)
            .values(content=b"x", accused=b"x", classification=b"x")
        )
        await session.commit()
    assert await export() == before


async def test_statistics_and_overdue_views(harness: Harness) -> None:
    world, _, number, _ = await make_ledger(harness)
    sup = auth(world.supervisor[1])
    for token in (world.investigator[1], world.admin[1]):
        assert (await harness.client.get("/api/v1/stats/overview", headers=auth(token))).status_code == 403
        assert (await harness.client.get("/api/v1/stats/overdue", headers=auth(token))).status_code == 403
    overview = (await harness.client.get("/api/v1/stats/overview", headers=sup)).json()
    assert overview["total"] >= 2 and overview["by_channel"]["web"] >= 2
    assert overview["by_status"]["disposed"] >= 1 and sum(overview["by_source"].values()) == overview["total"]
    assert sum(overview["by_unit"].values()) == overview["total"] and overview["by_category"]
    trends = (await harness.client.get("/api/v1/stats/trends", headers=sup)).json()
    assert sum(trends["by_month"].values()) == overview["total"] and "mean_days" in trends["handling_days"]
    assert (
        await harness.client.get("/api/v1/stats/trends", headers=auth(world.investigator[1]))
    ).status_code == 403
    async with harness.runtime.session_factory() as session:
        clue = await session.scalar(select(Clue).where(Clue.registry_number == number))
        clue.due_at = clue.received_at - timedelta(days=2)
        await session.commit()
    overdue = (await harness.client.get("/api/v1/stats/overdue", headers=sup)).json()
    handlers = [h for h in overdue["per_handler"] if h["handler_id"] == world.investigator[0]]
    assert handlers and handlers[0]["overdue"] == 1


async def test_meeting_brief_sections(harness: Harness) -> None:
    world, _, number, injected = await make_ledger(harness)
    sup = auth(world.supervisor[1])
    async with harness.runtime.session_factory() as session:
        clue = await session.scalar(select(Clue).where(Clue.registry_number == injected))
        clue.due_at = clue.received_at - timedelta(days=1)
        await session.commit()
        clue_id = await session.scalar(select(Clue.id).where(Clue.registry_number == number))
    body = {"held_on": TODAY.isoformat(), "participants": ["甲", "乙"], "conclusion": "继续核实"}
    assert (
        await harness.client.post(f"/api/v1/clues/{clue_id}/consultations", headers=sup, json=body)
    ).status_code == 201
    params = {
        "start": (TODAY - timedelta(days=1)).isoformat(),
        "end": (TODAY + timedelta(days=1)).isoformat(),
    }
    assert (
        await harness.client.get("/api/v1/brief", headers=auth(world.investigator[1]), params=params)
    ).status_code == 403
    bad = {"start": params["end"], "end": params["start"]}
    assert (await harness.client.get("/api/v1/brief", headers=sup, params=bad)).status_code == 422
    brief = (await harness.client.get("/api/v1/brief", headers=sup, params=params)).json()
    numbers = {name: {i["registry_number"] for i in items} for name, items in brief["sections"].items()}
    assert {number, injected} <= numbers["new"]
    assert injected in numbers["overdue"] and number not in numbers["overdue"]
    assert number in numbers["key"] and injected not in numbers["key"]
    assert number in numbers["difficult"]
    response = await harness.client.get("/api/v1/brief.xlsx", headers=sup, params=params)
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    assert workbook.sheetnames == ["新收线索", "超期线索", "重点督办线索", "疑难会商线索"]
    key_rows = list(workbook["重点督办线索"].iter_rows(values_only=True))
    assert key_rows[0][0].startswith("例会简报·重点督办线索（筛选条件：日期：")
    assert key_rows[1][0] == "编号" and any(r[0] == number for r in key_rows[2:])


async def test_quarterly_report_counts_the_quarter(harness: Harness) -> None:
    world, _, number, injected = await make_ledger(harness)
    sup = auth(world.supervisor[1])
    quarter = (TODAY.month - 1) // 3 + 1
    params = {"year": TODAY.year, "quarter": quarter}
    report = (await harness.client.get("/api/v1/stats/quarterly", headers=sup, params=params)).json()
    assert report["received"]["total"] >= 2 and report["received"]["by_channel"]["web"] >= 2
    assert report["disposed_by_method"].get("verification", 0) >= 1
    assert report["steps"]["triage"] >= 2 and report["steps"]["dispose"] >= 1
    assert {"overdue_at_end", "consultations", "handling_days", "referred_by_target"} <= set(report)
    bad = await harness.client.get(
        "/api/v1/stats/quarterly", headers=sup, params={"year": 2026, "quarter": 5}
    )
    assert bad.status_code == 422
    earlier = (
        await harness.client.get("/api/v1/stats/quarterly", headers=sup, params={"year": 2001, "quarter": 1})
    ).json()
    assert earlier["received"]["total"] == 0 and earlier["steps"] == {}
