"""The staff desk through a logged-in web session, on both databases: an investigator's 我的线索 and clue
page (every read audited, another unit's clue and file invisible), one form per open step with only its own
fields, answering the reporter, notes, transfer requests a supervisor decides, home-page counts, and the
console's exports with the staff session."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import func, select, update

from service.audit.models import AuditEntry
from service.platform.timeutil import utcnow
from service.registry.models import Clue
from service.registry.transfer_requests import TransferRequest
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import call_body
from tests.helpers.media import png_bytes
from tests.helpers.registry import make_world, step, submit
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff


async def audit_count(harness: Harness, action: str, actor_id: str, clue_id: str) -> int:
    async with harness.runtime.session_factory() as session:
        query = select(func.count()).where(
            AuditEntry.action == action,
            AuditEntry.actor == f"staff:{actor_id}",
            AuditEntry.object_id == clue_id,
        )
        return int(await session.scalar(query) or 0)


def form_html(page: str, form_id: str) -> str:
    match = re.search(rf'<form[^>]*id="{form_id}"[^>]*>(.*?)</form>', page, re.S)
    assert match, f"no form {form_id}"
    return match.group(1)


def field_names(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)[^>]*name="([^"]+)"', html))


async def registry_number(harness: Harness, clue_id: str) -> str:
    async with harness.runtime.session_factory() as session:
        return str(await session.scalar(select(Clue.registry_number).where(Clue.id == clue_id)))


async def test_investigator_desk_reads_are_audited_and_other_units_invisible(harness: Harness) -> None:
    world = await make_world(harness)
    sup = world.supervisor[1]
    investigator = await make_web_staff(harness, ["investigator"], world.handling_unit)
    # Made before the clues: a supervisor then holds their wraps (compartments), reads the request's reason.
    supervisor = await make_web_staff(harness, ["supervisor"], world.other_unit)
    mine = await submit(harness, world)
    theirs = await submit(harness, world)
    for clue_id, assignee in ((mine, investigator.id), (theirs, world.other_investigator[0])):
        assert (await step(harness, clue_id, sup, "triage", route=False)).status_code == 201
        response = await harness.client.post(
            f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": assignee}, headers=auth(sup)
        )
        assert response.status_code == 200, response.text
    # The reporter's file on each clue (a document added through the API stands in for it here).
    files = {}
    for clue_id in (mine, theirs):
        added = await harness.client.post(
            f"/api/v1/clues/{clue_id}/documents", content=png_bytes(), headers=auth(sup)
        )
        assert added.status_code == 201, added.text
        files[clue_id] = added.json()["id"]
    # Make one clue of mine overdue: the desk marks it.
    async with harness.runtime.session_factory() as session:
        await session.execute(update(Clue).where(Clue.id == mine).values(due_at=utcnow() - timedelta(days=1)))
        await session.commit()
    number, other_number = await registry_number(harness, mine), await registry_number(harness, theirs)

    async with log_in(harness, investigator) as client:
        home = await client.get("/staff")
        assert 'id="figure-mine_overdue"' in home.text and "/staff/registry/mine?due=overdue" in home.text
        desk = await client.get("/staff/registry/mine")
        assert desk.status_code == 200 and number in desk.text and other_number not in desk.text
        assert "已超期" in desk.text and 'class="due-overdue"' in desk.text
        overdue = await client.get("/staff/registry/mine?due=overdue")
        assert number in overdue.text

        before = {
            action: await audit_count(harness, action, investigator.id, mine)
            for action in ("clue.read", "clue.history_read", "message.read", "clue.progress_read")
        }
        page = await client.get(f"/staff/registry/clues/{mine}")
        assert page.status_code == 200 and "派出所民警收了对方的红包" in page.text
        assert world.accused_unit_name in page.text and "/staff/registry/mine" in page.text
        for action, count in before.items():
            assert await audit_count(harness, action, investigator.id, mine) == count + 1, action
        # Only the steps open to an investigator now (triaged: accept), each a form of its own.
        assert 'id="step-accept"' in page.text
        for absent in ("step-triage", "step-refer", "step-transfer", "step-archive", "assign", "supervision"):
            assert f'id="{absent}"' not in page.text, absent
        assert field_names(form_html(page.text, "step-accept")) == {"csrf_token", "action", "reason"}

        # Another unit's clue and its file do not exist for this investigator; the refusal is not audited
        # as a read.
        assert (await client.get(f"/staff/registry/clues/{theirs}")).status_code == 404
        assert (await client.get(f"/staff/registry/files/{files[theirs]}")).status_code == 404
        assert await audit_count(harness, "clue.read", investigator.id, theirs) == 0
        assert (await client.get("/staff/registry")).status_code == 403
        assert (await client.get("/staff/registry/ledger.xlsx")).status_code == 403

        # The file of my clue: the cleaned copy, audited.
        assert f"/staff/registry/files/{files[mine]}" in page.text
        download = await client.get(f"/staff/registry/files/{files[mine]}")
        assert download.status_code == 200 and download.content.startswith(b"\x89PNG")
        assert "attachment;" in download.headers["content-disposition"]
        shown = await client.get(f"/staff/registry/files/{files[mine]}?view=1")
        assert shown.headers["content-disposition"].startswith("inline")
        assert await audit_count(harness, "attachment.downloaded", investigator.id, mine) == 2

        token = csrf_of(page.text)
        # While the clue waits to be taken up, its handler may ask for it to go to another unit.
        assert 'id="transfer-request"' in page.text
        asked = await client.post(
            f"/staff/registry/clues/{mine}/transfer-request",
            data={"csrf_token": token, "to_unit_id": world.other_unit, "reason": "属督查室职责"},
        )
        assert asked.status_code == 303
        # A forged supervisor step is refused and changes nothing.
        refused = await client.post(
            f"/staff/registry/clues/{mine}/transition",
            data={"csrf_token": token, "action": "archive", "reason": "x"},
        )
        assert refused.status_code == 403
        # Accept, then the disposal form asks for its own fields only.
        accepted = await client.post(
            f"/staff/registry/clues/{mine}/transition",
            data={"csrf_token": token, "action": "accept", "reason": "受理核查"},
        )
        assert accepted.status_code == 303
        page = await client.get(f"/staff/registry/clues/{mine}")
        assert '<dd id="clue-status">核查中</dd>' in page.text
        dispose = field_names(form_html(page.text, "step-dispose"))
        assert dispose == {"csrf_token", "action", "reason", "method", "approver_id", "decision_on"}
        assert "finding" not in dispose and 'id="step-conclude"' not in page.text
        assert 'id="transfer-request"' not in page.text  # no transfer from verifying
        # Missing approver: the reason is shown, the status stays.
        missing = await client.post(
            f"/staff/registry/clues/{mine}/transition",
            data={"csrf_token": token, "action": "dispose", "reason": "处置", "method": "inquiry"},
        )
        assert missing.status_code == 422 and "审批人" in missing.text
        assert '<dd id="clue-status">核查中</dd>' in missing.text

        # Answer the reporter, add a note, ask for a transfer.
        sent = await client.post(
            f"/staff/registry/clues/{mine}/messages", data={"csrf_token": token, "text": "请补充时间地点。"}
        )
        assert sent.status_code == 303
        empty = await client.post(
            f"/staff/registry/clues/{mine}/messages", data={"csrf_token": token, "text": " "}
        )
        assert empty.status_code == 422 and "请填写消息内容" in empty.text
        noted = await client.post(
            f"/staff/registry/clues/{mine}/notes", data={"csrf_token": token, "text": "已调取卷宗"}
        )
        assert noted.status_code == 303
        page = await client.get(f"/staff/registry/clues/{mine}")
        assert "请补充时间地点。" in page.text and "已调取卷宗" in page.text
        assert await audit_count(harness, "message.sent", investigator.id, mine) == 1
        assert await audit_count(harness, "clue.note_added", investigator.id, mine) == 1

    # The supervisor sees the request waiting, with its reason, and decides it.
    async with log_in(harness, supervisor) as client:
        home = await client.get("/staff")
        assert 'id="figure-awaiting_approval"' in home.text
        waiting = await client.get("/staff/registry/transfer-requests")
        assert number in waiting.text and "属督查室职责" in waiting.text
        async with harness.runtime.session_factory() as session:
            request_id = await session.scalar(
                select(TransferRequest.id).where(TransferRequest.clue_id == mine)
            )
        token = csrf_of(waiting.text)
        approve = await client.post(
            f"/staff/registry/transfer-requests/{request_id}",
            data={
                "csrf_token": token,
                "decision": "approve",
                "reason": "同意",
                "document_number": "督移〔2026〕1号",
            },
        )
        # The clue went on to verification meanwhile: a transfer is no longer possible, and nothing changes.
        assert (
            approve.status_code == 409 and "不能进行此操作" in approve.text and "属督查室职责" in approve.text
        )
        refused = await client.post(
            f"/staff/registry/transfer-requests/{request_id}",
            data={"csrf_token": token, "decision": "refuse", "reason": "已在核查，不宜移交"},
        )
        assert refused.status_code == 303
        assert number not in (await client.get("/staff/registry/transfer-requests")).text
        detail = (await harness.client.get(f"/api/v1/clues/{mine}", headers=auth(sup))).json()
        assert detail["assignee_id"] == investigator.id and detail["status"] == "verifying"


async def test_supervisor_assigns_from_the_handling_unit_first_and_exports(harness: Harness) -> None:
    world = await make_world(harness)
    supervisor = await make_web_staff(harness, ["supervisor"], world.other_unit)
    clue_id = await submit(harness, world, anonymous=False)
    assert (await step(harness, clue_id, world.supervisor[1], "triage")).status_code == 201  # routed
    number = await registry_number(harness, clue_id)
    async with log_in(harness, supervisor) as client:
        home = await client.get("/staff")
        for key in ("new", "unassigned", "near_due", "overdue", "awaiting_approval"):
            assert f'id="figure-{key}"' in home.text, key
        assert "/staff/registry?status=registered" in home.text

        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assign = form_html(page.text, "assign")
        # Nobody preselected; the handling unit's people first.
        assert '<option value="" selected>' in assign and assign.count(" selected") == 1
        groups = re.findall(r'<optgroup label="([^"]+)"', assign)
        assert groups and groups[0].startswith("承办单位：")
        # Status and handling unit agree: triaged and routed shows the unit, never "未分办".
        assert "未分办" not in re.search(r'<dd id="clue-unit">(.*?)</dd>', page.text).group(1)
        # Each open step is its own form with its own fields.
        assert field_names(form_html(page.text, "step-refer")) == {
            "csrf_token",
            "action",
            "reason",
            "target",
            "document_number",
        }
        assert field_names(form_html(page.text, "step-transfer")) == {
            "csrf_token",
            "action",
            "reason",
            "to_unit_id",
            "document_number",
            "expected_feedback_on",
        }
        assert 'id="step-dispose"' not in page.text and 'id="step-triage"' not in page.text

        ledger = await client.get("/staff/registry", params={"status": "triaged"})
        assert re.search(r"共 \d+ 条", ledger.text) and number in ledger.text
        assert "/staff/registry/ledger.xlsx?status=triaged" in ledger.text
        unassigned = await client.get("/staff/registry", params={"assign": "none"})
        assert unassigned.status_code == 200

        response = await client.get("/staff/registry/ledger.xlsx", params={"status": "triaged"})
        assert response.status_code == 200, response.text
        assert "filename*=utf-8''" in response.headers["content-disposition"]
        workbook = load_workbook(io.BytesIO(response.content))
        sheet = workbook.active
        assert sheet.freeze_panes == "A3"
        assert "状态：已分办" in sheet["A1"].value and "导出时间" in sheet["A1"].value
        headers = [c.value for c in sheet[2]]
        assert headers[0] == "编号" and "状态" in headers and "办理结果" in headers
        assert sheet.column_dimensions["A"].width >= 15
        row = next(r for r in sheet.iter_rows(min_row=3, values_only=True) if r[0] == number)
        values = dict(zip(headers, row, strict=False))
        assert values["状态"] == "已分办" and values["办理结果"] is None
        assert values["问题类别"] and not re.search(r"[a-z_]{4,}", values["问题类别"])  # names, not ids

        response = await client.get("/staff/registry/ledger.csv", params={"status": "triaged"})
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0][0] == "编号" and any(r[0] == number for r in rows[1:])

        brief = await client.get("/staff/registry/brief")
        assert "/staff/registry/brief.xlsx?start=" in brief.text
        start = re.search(r'name="start" type="date" value="([^"]+)"', brief.text).group(1)
        end = re.search(r'name="end" type="date" value="([^"]+)"', brief.text).group(1)
        response = await client.get("/staff/registry/brief.xlsx", params={"start": start, "end": end})
        assert response.status_code == 200
        book = load_workbook(io.BytesIO(response.content))
        new = book["新收线索"]
        assert new.freeze_panes == "A3" and [c.value for c in new[2]][:3] == ["编号", "状态", "是否超期"]
        bad = await client.get("/staff/registry/brief.xlsx", params={"start": end, "end": "1999-01-01"})
        assert bad.status_code == 422
    async with harness.runtime.session_factory() as session:
        exports = await session.scalar(
            select(func.count()).where(
                AuditEntry.action.in_(("ledger.exported", "brief.exported")),
                AuditEntry.actor == f"staff:{supervisor.id}",
            )
        )
        assert exports == 3


async def test_hotline_additions_show_on_the_clue_page(harness: Harness) -> None:
    operator_id, operator = await harness.add_staff(unique("op"), ["operator"])
    supervisor = await make_web_staff(harness, ["supervisor"])
    response = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    assert response.status_code == 201, response.text
    clue_id = response.json()["clue_id"]
    async with log_in(harness, supervisor) as client:
        before = await audit_count(harness, "clue.additions_read", supervisor.id, clue_id)
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert page.status_code == 200 and 'id="additions"' in page.text and "来电记录" in page.text
        assert "交了两万块钱" in page.text and "同意回访" in page.text and "来电时间 20" in page.text
        assert await audit_count(harness, "clue.additions_read", supervisor.id, clue_id) == before + 1


async def test_investigator_answers_a_progress_request(harness: Harness) -> None:
    world = await make_world(harness)
    sup = world.supervisor[1]
    investigator = await make_web_staff(harness, ["investigator"], world.handling_unit)
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage", route=False)).status_code == 201
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": investigator.id}, headers=auth(sup)
    )
    assert assigned.status_code == 200
    due_on = (utcnow() + timedelta(days=5)).date().isoformat()
    asked = await harness.client.post(
        f"/api/v1/clues/{clue_id}/progress-requests",
        json={"due_on": due_on, "note": "请于周五前报告核查进展"},
        headers=auth(sup),
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    async with log_in(harness, investigator) as client:
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert "请于周五前报告核查进展" in page.text and f"/progress/{request_id}" in page.text
        token = csrf_of(page.text)
        empty = await client.post(
            f"/staff/registry/clues/{clue_id}/progress/{request_id}", data={"csrf_token": token, "report": ""}
        )
        assert empty.status_code == 422
        done = await client.post(
            f"/staff/registry/clues/{clue_id}/progress/{request_id}",
            data={"csrf_token": token, "report": "已调取监控，正在比对。"},
        )
        assert done.status_code == 303
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert "已报告" in page.text and "已调取监控，正在比对。" in page.text
        assert f"/progress/{request_id}" not in page.text
