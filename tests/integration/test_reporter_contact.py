"""Reporter communication the rules ask for, over real HTTP on both databases: files staff send to the
reporter (cleaned, sealed to the reporter key, downloaded from the status page without JavaScript, audited;
an uncleanable file refused), follow-up calls (回访) and a real-name reporter's objection (异议) with its
handling, each with its own deadline from the deadline rules, overdue ones reminded; bad input changes
nothing; the reporter sees the file and the handling and nothing of staff internals."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from service.app.main import create_app
from service.attachments.models import Attachment
from service.audit.models import AuditEntry
from service.custody.db_roles import apply_roles
from service.handoff.models import Dossier
from service.intake import originals
from service.messages.models import Message, ReporterKey
from service.platform.db import create_engine
from service.platform.timeutil import LOCAL, local_date, utcnow
from service.registry import supervision
from service.registry.deadlines import add_working_days, end_of_local_day
from service.registry.models import ClueReminder, ClueState, FollowUp, Objection
from service.retention import service as retention_service
from tests.helpers.app import Harness, auth, make_settings, running_app, unique
from tests.helpers.database import create_pg_database, drop_pg_database, pg_admin
from tests.helpers.media import jpeg_with_gps
from tests.helpers.registry import World, make_world, step
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff
from tests.helpers.web import clue_of_receipt, hidden_fields, open_status, post_reply

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _today() -> str:
    """The reporter's local date when the step runs (a module constant went stale across local midnight)."""
    return datetime.now(LOCAL).date().isoformat()


PHONE = "13987654321"
LEGACY_DOC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + "作者：张三".encode() * 400  # no cleaner


async def _tip(harness: Harness, world: World, *, anonymous: bool) -> tuple[str, str]:
    """A tip through the API: (clue id, receipt code)."""
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": unique("派出所民警收了红包，案子一直压着不立案。"),
            "accused": {"name": unique("张"), "unit": world.accused_unit_name, "position": "民警"},
            "anonymous": anonymous,
            **({} if anonymous else {"submitter": {"name": "李四", "phone": "13800138000"}}),
        },
    )
    assert response.status_code == 201, response.text
    code = response.json()["receipt"].replace(" ", "").replace("-", "")
    return await clue_of_receipt(harness, code), code


async def _concluded(harness: Harness, world: World, clue_id: str) -> None:
    sup, inv = world.supervisor[1], world.investigator[1]
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    assert (await step(harness, clue_id, inv, "accept")).status_code == 201
    approval = {"approver_id": world.approver[0], "decision_on": _today()}
    disposed = await step(harness, clue_id, inv, "dispose", method="verification", **approval)
    assert disposed.status_code == 201, disposed.text
    concluded = await step(
        harness,
        clue_id,
        inv,
        "conclude",
        finding="unfounded",
        summary="经核查，反映问题查无实据。",
        feedback="已告知。",
        **approval,
    )
    assert concluded.status_code == 201, concluded.text


async def _counts(harness: Harness, clue_id: str) -> tuple[int, int, int, int]:
    async with harness.runtime.session_factory() as session:
        return (
            await session.scalar(select(func.count()).select_from(Message).where(Message.clue_id == clue_id)),
            await session.scalar(
                select(func.count()).select_from(Attachment).where(Attachment.clue_id == clue_id)
            ),
            await session.scalar(
                select(func.count()).select_from(Objection).where(Objection.clue_id == clue_id)
            ),
            await session.scalar(
                select(func.count()).select_from(FollowUp).where(FollowUp.clue_id == clue_id)
            ),
        )


# --- Files to the reporter ----------------------------------------------------------------------------------


async def test_staff_send_a_cleaned_file_the_reporter_downloads(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id, code = await _tip(harness, world, anonymous=True)
    url = f"/api/v1/clues/{clue_id}/messages/file"
    photo = jpeg_with_gps(make="PhoneMaker", artist="王警官")

    # A clue without a reporter key (as one from a staff source, or older): nothing to seal the file to.
    keyless, _ = await _tip(harness, world, anonymous=True)
    async with harness.runtime.session_factory() as session:
        await session.delete(await session.get(ReporterKey, keyless))
        await session.commit()
    refused = await harness.client.post(
        f"/api/v1/clues/{keyless}/messages/file", content=photo, headers=auth(sup)
    )
    assert refused.status_code == 409 and "查询码" in refused.json()["error"]["message"]
    assert await _counts(harness, keyless) == (0, 0, 0, 0)

    # Wrong role, unknown clue, a clue not assigned to the caller: clear errors, nothing stored.
    assert (await harness.client.post(url, content=photo, headers=auth(world.operator[1]))).status_code == 403
    missing = await harness.client.post("/api/v1/clues/nope/messages/file", content=photo, headers=auth(sup))
    assert missing.status_code == 404
    assert (
        await harness.client.post(url, content=photo, headers=auth(inv))
    ).status_code == 404  # not assigned
    # A file that cannot be cleaned is refused for sending (never sealed: it is meant to leave).
    dirty = await harness.client.post(url, content=LEGACY_DOC, headers=auth(sup))
    assert dirty.status_code == 422, dirty.text
    assert "文件未发送" in dirty.json()["error"]["message"] and "元数据" in dirty.json()["error"]["message"]
    assert await _counts(harness, clue_id) == (0, 0, 0, 0)

    sent = await harness.client.post(url, content=photo, headers=auth(sup))
    assert sent.status_code == 201, sent.text
    (attachment,) = sent.json()["attachments"]
    assert attachment["for_reporter"] is True and sent.json()["direction"] == "to_reporter"
    assert await _counts(harness, clue_id) == (1, 1, 0, 0)
    listed = await harness.client.get(f"/api/v1/clues/{clue_id}/attachments", headers=auth(sup))
    assert any("jpeg" in label for label in listed.json()[0]["removed_metadata"])

    # The reporter replies with a file of their own: that one is not offered back for download.
    page = await open_status(harness.client, code)
    reply = await post_reply(
        harness.client, page.text, "收到，谢谢。", files=[("mine.txt", "我的材料".encode())]
    )
    assert reply.status_code == 200, reply.text
    page = await open_status(harness.client, code)
    html = page.text
    assert html.count('action="/status/file"') == 1  # the staff file only
    assert "王警官" not in html and world.supervisor[0] not in html and "staff:" not in html

    # Downloading it: a POST carrying the code (no JavaScript, no code in a URL), cleaned bytes.
    form = [m for m in html.split("<form") if 'action="/status/file"' in m][0]
    fields = hidden_fields("<form" + form)
    assert fields["file"] == attachment["id"]
    download = await harness.client.post("/status/file", data=fields)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "image/jpeg"
    assert "attachment;" in download.headers["content-disposition"]
    assert b"PhoneMaker" not in download.content and "王警官".encode() not in download.content
    assert 0x8825 not in Image.open(io.BytesIO(download.content)).getexif()  # no GPS
    assert len(download.content) == attachment["size"]

    # The reporter's own upload, another clue's file, a wrong code: nothing.
    async with harness.runtime.session_factory() as session:
        own = await session.scalar(
            select(Attachment.id).where(Attachment.clue_id == clue_id, Attachment.reporter_key.is_(None))
        )
    assert own is not None
    assert (await harness.client.post("/status/file", data={**fields, "file": own})).status_code == 404
    other_clue, other_code = await _tip(harness, world, anonymous=True)
    other_page = await open_status(harness.client, other_code)
    crossed = {**hidden_fields(other_page.text), "file": attachment["id"]}
    assert (await harness.client.post("/status/file", data=crossed)).status_code == 404
    wrong = await harness.client.post("/status/file", data={**fields, "code": "1" * 20})
    assert wrong.status_code == 404
    no_csrf = await harness.client.post("/status/file", data={**fields, "csrf": "x"})
    assert no_csrf.status_code == 403

    async with harness.runtime.session_factory() as session:
        actions = list(
            (
                await session.scalars(
                    select(AuditEntry.action).where(AuditEntry.object_id == clue_id).order_by(AuditEntry.id)
                )
            ).all()
        )
    assert {"message.sent", "clue.attachments_added", "attachment.reporter_downloaded"} <= set(actions)
    assert actions.count("attachment.reporter_downloaded") == 1


async def test_staff_site_sends_a_file_from_the_clue_page(harness: Harness) -> None:
    world = await make_world(harness)
    staff = await make_web_staff(harness, ["supervisor"], world.other_unit)
    clue_id, code = await _tip(harness, world, anonymous=True)
    assert (await open_status(harness.client, code)).status_code == 200
    async with log_in(harness, staff) as client:
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert page.status_code == 200 and 'id="message-file"' in page.text
        token = csrf_of(page.text)
        files = [
            ("csrf_token", (None, token.encode())),
            ("text", (None, "请查收告知书。".encode())),
            ("file", ("告知书.docx", io.BytesIO(LEGACY_DOC), "application/octet-stream")),
        ]
        refused = await client.post(f"/staff/registry/clues/{clue_id}/messages/file", files=files)
        assert refused.status_code == 422 and "文件未发送" in refused.text
        assert await _counts(harness, clue_id) == (0, 0, 0, 0)
        files[2] = ("file", ("photo.jpg", io.BytesIO(jpeg_with_gps()), "image/jpeg"))
        forged = [("csrf_token", (None, b"forged")), *files[1:]]
        assert (
            await client.post(f"/staff/registry/clues/{clue_id}/messages/file", files=forged)
        ).status_code == 403
        sent = await client.post(f"/staff/registry/clues/{clue_id}/messages/file", files=files)
        assert sent.status_code == 303, sent.text
    assert await _counts(harness, clue_id) == (1, 1, 0, 0)
    status = await open_status(harness.client, code)
    assert "请查收告知书。" in status.text and 'action="/status/file"' in status.text
    assert staff.name not in status.text


# --- 回访 and 异议 ------------------------------------------------------------------------------------------


async def test_follow_ups_and_objections_with_their_deadlines(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    admin = world.admin[1]
    clue_id, code = await _tip(harness, world, anonymous=False)
    anonymous_clue, anonymous_code = await _tip(harness, world, anonymous=True)
    follow_ups = f"/api/v1/clues/{clue_id}/follow-ups"
    objections = f"/api/v1/clues/{clue_id}/objections"
    visit = {
        "visited_on": _today(),
        "channel": "phone",
        "outcome": "reached",
        "note": f"举报人表示满意，电话{PHONE}",
    }
    said = {"channel": "phone", "received_on": _today(), "text": f"对结论不服，请重新调查。我的电话{PHONE}"}

    # No finding yet: neither is possible, on any side.
    assert (await harness.client.post(follow_ups, json=visit, headers=auth(sup))).status_code == 409
    assert (await harness.client.post(objections, json=said, headers=auth(sup))).status_code == 409
    early = await harness.client.post("/api/v1/receipt/objections", json={"receipt": code, "text": "不服"})
    assert early.status_code == 409
    assert await _counts(harness, clue_id) == (0, 0, 0, 0)

    rule = await harness.client.post(
        "/api/v1/deadline-rules",
        json={"stage": "follow_up", "source": "public_report", "working_days": 3},
        headers=auth(admin),
    )
    assert rule.status_code == 201, rule.text
    try:
        await _concluded(harness, world, clue_id)
        await _concluded(harness, world, anonymous_clue)
        async with harness.runtime.session_factory() as session:
            concluded_at = (await session.get(ClueState, clue_id)).concluded_at
        expected_visit_due = end_of_local_day(add_working_days(local_date(concluded_at), 3))
        expected_objection_due = end_of_local_day(add_working_days(local_date(utcnow()), 20))  # the default

        state = await harness.client.get(follow_ups, headers=auth(inv))
        assert state.status_code == 200, state.text
        assert datetime.fromisoformat(state.json()["due_at"]) == expected_visit_due
        assert state.json()["done"] is False and state.json()["alert"] == "ok"

        # Bad input, each refused with a clear error; nothing recorded.
        for body, status in (
            ({**visit, "channel": "pigeon"}, 422),
            ({**visit, "note": "x" * 5001}, 422),
            ({**visit, "visited_on": "2999-01-01"}, 422),
        ):
            assert (await harness.client.post(follow_ups, json=body, headers=auth(inv))).status_code == status
        assert (
            await harness.client.post(follow_ups, json=visit, headers=auth(world.operator[1]))
        ).status_code == 403
        assert (
            await harness.client.post("/api/v1/clues/nope/follow-ups", json=visit, headers=auth(inv))
        ).status_code == 404
        assert (
            await harness.client.post(follow_ups, json=visit, headers=auth(world.other_investigator[1]))
        ).status_code == 404
        assert await _counts(harness, clue_id) == (0, 0, 0, 0)

        recorded = await harness.client.post(follow_ups, json=visit, headers=auth(inv))
        assert recorded.status_code == 201, recorded.text
        assert PHONE not in recorded.json()["note"] and "［手机号］" in recorded.json()["note"]
        assert recorded.json()["late"] is False
        assert datetime.fromisoformat(recorded.json()["due_at"]) == expected_visit_due
        state = (await harness.client.get(follow_ups, headers=auth(sup))).json()
        assert state["done"] is True and state["alert"] == "done" and len(state["items"]) == 1
        async with harness.runtime.session_factory() as session:
            row = await session.scalar(select(FollowUp).where(FollowUp.clue_id == clue_id))
            assert row.identity is not None and PHONE.encode() not in row.note

        # Objections: an anonymous reporter may not object (the rules give them no such right).
        anonymous = await harness.client.post(
            "/api/v1/receipt/objections", json={"receipt": anonymous_code, "text": "不服"}
        )
        assert anonymous.status_code == 409 and "实名" in anonymous.json()["error"]["message"]
        anonymous_page = await open_status(harness.client, anonymous_code)
        assert 'action="/status/objection"' not in anonymous_page.text
        web_try = await harness.client.post(
            "/status/objection", data={**hidden_fields(anonymous_page.text), "text": "我不服"}
        )
        assert web_try.status_code == 422 and "实名" in web_try.text
        assert (
            await harness.client.post(
                f"/api/v1/clues/{anonymous_clue}/objections", json=said, headers=auth(inv)
            )
        ).status_code == 409
        assert (await _counts(harness, anonymous_clue))[2] == 0

        # The real-name reporter objects on the status page (no JavaScript: a plain form).
        page = await open_status(harness.client, code)
        assert 'action="/status/objection"' in page.text
        empty = await harness.client.post(
            "/status/objection", data={**hidden_fields(page.text), "text": "  "}
        )
        assert empty.status_code == 422
        too_long = await harness.client.post(
            "/status/objection", data={**hidden_fields(page.text), "text": "长" * 5001}
        )
        assert too_long.status_code == 422
        assert (await _counts(harness, clue_id))[2] == 0
        words = f"我不同意查无实据的结论，派出所有监控可查。电话{PHONE}"
        made = await harness.client.post(
            "/status/objection", data={**hidden_fields(page.text), "text": words}
        )
        assert made.status_code == 200, made.text
        assert "您的异议已收到" in made.text and words in made.text and "已收到，等待处理" in made.text
        again = await harness.client.post(
            "/api/v1/receipt/objections", json={"receipt": code, "text": "再提"}
        )
        assert again.status_code == 409  # one being handled at a time
        # Staff record one made by phone only when none is open.
        assert (await harness.client.post(objections, json=said, headers=auth(inv))).status_code == 409

        async with harness.runtime.session_factory() as session:  # what a custody release would open
            labels = [o.label.split(":")[0] for o in await originals.later_originals(session, clue_id)]
        assert labels.count("follow_up") == 1 and labels.count("objection") == 1

        listed = await harness.client.get(objections, headers=auth(inv))
        (objection,) = listed.json()
        assert objection["channel"] == "status_page" and PHONE not in objection["statement"]
        assert datetime.fromisoformat(objection["due_at"]) == expected_objection_due
        decision = f"/api/v1/objections/{objection['id']}/decision"
        assert (
            await harness.client.post(decision, json={"decision": "review"}, headers=auth(inv))
        ).status_code == 403  # supervisors decide
        assert (
            await harness.client.post(decision, json={"decision": "reject"}, headers=auth(sup))
        ).status_code == 422  # a rejection needs its reason
        assert (
            await harness.client.post(decision, json={"decision": "resolve"}, headers=auth(sup))
        ).status_code == 409  # not under review yet
        assert (
            await harness.client.post(
                "/api/v1/objections/nope/decision", json={"decision": "review"}, headers=auth(sup)
            )
        ).status_code == 404
        reviewing = await harness.client.post(decision, json={"decision": "review"}, headers=auth(sup))
        assert reviewing.status_code == 200 and reviewing.json()["status"] == "reviewing"
        page = await open_status(harness.client, code)
        assert "已受理，正在复查" in page.text

        # Overdue: a reminder with the objection's own stage, once; a 回访 done in time needs none.
        async with harness.runtime.session_factory() as session:
            row = await session.get(Objection, objection["id"])
            row.received_at = row.received_at - timedelta(days=60)
            await session.commit()
        async with harness.runtime.session_factory() as session:
            await supervision.issue_contact_reminders(session, now=utcnow())
            await supervision.issue_contact_reminders(session, now=utcnow())  # idempotent
            await session.commit()
            stages = list(
                (
                    await session.scalars(select(ClueReminder.stage).where(ClueReminder.clue_id == clue_id))
                ).all()
            )
        assert stages == ["objection"]
        assert (await harness.client.get(objections, headers=auth(sup))).json()[0]["overdue"] is True

        unresolved = await harness.client.post(
            decision, json={"decision": "resolve", "text": "维持原结论。"}, headers=auth(sup)
        )
        assert unresolved.status_code == 422  # the result is required
        answer = "经复查，监控录像未显示所反映情况，维持原结论。"
        resolved = await harness.client.post(
            decision,
            json={"decision": "resolve", "result": "finding_kept", "text": answer},
            headers=auth(sup),
        )
        assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"

        # The reporter reads the handling in plain Chinese, and nothing of staff internals.
        page = await open_status(harness.client, code)
        assert "复查完毕" in page.text and "维持原处理结果" in page.text and answer in page.text
        for internal in (world.supervisor[0], world.investigator[0], "staff:", "［手机号］", "答复期限"):
            assert internal not in page.text  # no staff ids, no masked staff copy, no staff deadlines
        receipt = await harness.client.post("/api/v1/receipt/status", json={"receipt": code})
        (seen,) = receipt.json()["objections"]
        assert seen["status"] == "resolved" and seen["answer"] == answer and seen["text"] == words
        assert set(seen) == {"received_at", "status", "status_zh", "result", "text", "answer"}
        english = await open_status(harness.client, code, lang="en")
        assert "Review finished" in english.text and "The original finding stands." in english.text

        async with harness.runtime.session_factory() as session:
            details = [
                (a, json.loads(d))
                for a, d in (
                    await session.execute(
                        select(AuditEntry.action, AuditEntry.details).where(AuditEntry.object_id == clue_id)
                    )
                ).all()
            ]
        actions = [a for a, _ in details]
        assert actions.count("clue.objection_received") == 1 and actions.count("clue.objection_decided") == 2
        assert actions.count("clue.follow_up_recorded") == 1
        late = [d["late"] for a, d in details if a == "clue.objection_decided" and d["decision"] == "resolve"]
        assert late == [True]
    finally:
        removed = await harness.client.delete(
            f"/api/v1/deadline-rules/{rule.json()['id']}", headers=auth(admin)
        )
        assert removed.status_code in (200, 204)


async def test_a_missing_follow_up_is_reminded_and_staff_record_objections_on_the_clue_page(
    harness: Harness,
) -> None:
    world = await make_world(harness)
    staff = await make_web_staff(harness, ["supervisor"], world.other_unit)
    clue_id, code = await _tip(harness, world, anonymous=False)
    await _concluded(harness, world, clue_id)
    async with harness.runtime.session_factory() as session:
        state = await session.get(ClueState, clue_id)
        state.concluded_at = state.concluded_at - timedelta(days=60)
        await session.commit()
    async with harness.runtime.session_factory() as session:
        await supervision.issue_contact_reminders(session, now=utcnow())
        await session.commit()
        stages = list(
            (await session.scalars(select(ClueReminder.stage).where(ClueReminder.clue_id == clue_id))).all()
        )
    assert stages == ["follow_up"]
    listed = await harness.client.get("/api/v1/supervision", headers=auth(world.supervisor[1]))
    (item,) = [i for i in listed.json() if i["id"] == clue_id]  # concluded, yet on the list: 回访 overdue
    assert item["follow_up_overdue"] is True and item["objection_overdue"] is False

    async with log_in(harness, staff) as client:
        home = await client.get("/staff")
        figure = home.text.split('id="figure-contact_overdue"')[1].split("</li>")[0]
        assert "/staff/registry/supervision" in figure and int(figure.split('"count">')[1].split("<")[0]) >= 1
        supervision_page = await client.get("/staff/registry/supervision")
        assert "回访已超期" in supervision_page.text.split(clue_id)[1].split("</tr>")[0]
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert page.status_code == 200
        assert 'id="follow-up"' in page.text and 'id="objection"' in page.text
        assert "已超期" in page.text.split('id="follow-ups"')[1].split("</p>")[0]
        token = csrf_of(page.text)
        bad = await client.post(
            f"/staff/registry/clues/{clue_id}/objections",
            data={"csrf_token": token, "received_on": _today(), "channel": "letter", "text": ""},
        )
        assert bad.status_code == 422 and "请填写异议内容" in bad.text
        made = await client.post(
            f"/staff/registry/clues/{clue_id}/objections",
            data={
                "csrf_token": token,
                "received_on": _today(),
                "channel": "letter",
                "text": f"来信不服，电话{PHONE}",
            },
        )
        assert made.status_code == 303, made.text
        visit = await client.post(
            f"/staff/registry/clues/{clue_id}/follow-ups",
            data={"csrf_token": token, "visited_on": _today(), "channel": "visit", "outcome": "reached"},
        )
        assert visit.status_code == 303, visit.text
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert "超期回访" in page.text and "［手机号］" in page.text and PHONE not in page.text
        (objection_id,) = [o.id for o in await _objections(harness, clue_id)]
        reject = await client.post(
            f"/staff/registry/clues/{clue_id}/objections/{objection_id}/decision",
            data={"csrf_token": token, "decision": "reject", "text": "已超过提出异议的期限。"},
        )
        assert reject.status_code == 303, reject.text
        await client.get(f"/staff/lang?to=en&next=/staff/registry/clues/{clue_id}")
        english = await client.get(f"/staff/registry/clues/{clue_id}")
        assert english.status_code == 200
        assert "Follow-up calls and visits" in english.text and "Not accepted for review" in english.text
    listed = await harness.client.get("/api/v1/supervision", headers=auth(world.supervisor[1]))
    assert clue_id not in [i["id"] for i in listed.json()]  # the 回访 is done (late), nothing pending
    status = await open_status(harness.client, code)
    assert "不予受理" in status.text and "已超过提出异议的期限。" in status.text
    assert f"来信不服，电话{PHONE}" in status.text  # the reporter's own words, sealed to their key
    assert staff.name not in status.text


async def _objections(harness: Harness, clue_id: str) -> list[Objection]:
    async with harness.runtime.session_factory() as session:
        return list((await session.scalars(select(Objection).where(Objection.clue_id == clue_id))).all())


# --- The dossier on transfer ----------------------------------------------------------------------------


async def test_a_transfer_produces_its_dossier_and_the_clue_page_downloads_it(harness: Harness) -> None:
    world = await make_world(harness)
    staff = await make_web_staff(harness, ["supervisor"], world.other_unit)
    clue_id, _ = await _tip(harness, world, anonymous=True)
    sup = world.supervisor[1]
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    transferred = await step(
        harness, clue_id, sup, "transfer", to_unit_id=world.other_unit, document_number="移〔2026〕7号"
    )
    assert transferred.status_code == 201, transferred.text
    listed = await harness.client.get(f"/api/v1/clues/{clue_id}/dossiers", headers=auth(sup))
    (dossier,) = listed.json()
    assert dossier["transfer_id"] and dossier["kept"] is True
    async with harness.runtime.session_factory() as session:
        entry = await session.scalar(
            select(AuditEntry.details).where(
                AuditEntry.object_id == clue_id, AuditEntry.action == "clue.dossier_exported"
            )
        )
    assert json.loads(entry)["transfer_id"] == dossier["transfer_id"]
    kept = await harness.client.get(f"/api/v1/dossiers/{dossier['digest']}", headers=auth(sup))
    assert kept.status_code == 200 and kept.headers["x-dossier-hash"].endswith(dossier["digest"])
    assert (
        await harness.client.get(f"/api/v1/dossiers/{dossier['digest']}", headers=auth(world.operator[1]))
    ).status_code == 403

    async with log_in(harness, staff) as client:
        page = await client.get(f"/staff/registry/clues/{clue_id}")
        assert 'id="dossier"' in page.text and dossier["digest"] in page.text
        same = await client.get(f"/staff/registry/dossiers/{dossier['digest']}")
        assert same.status_code == 200 and same.content == kept.content
        fresh = await client.post(
            f"/staff/registry/clues/{clue_id}/dossier", data={"csrf_token": csrf_of(page.text)}
        )
        assert fresh.status_code == 200 and fresh.headers["content-type"] == "application/zip"
        assert fresh.content[:2] == b"PK"
    assert len((await harness.client.get(f"/api/v1/clues/{clue_id}/dossiers", headers=auth(sup))).json()) == 2

    # Retention's purge takes the kept dossiers' files with the clue's other blobs.
    async with harness.runtime.session_factory() as session:
        kept_blobs = set(
            (await session.scalars(select(Dossier.blob_id).where(Dossier.clue_id == clue_id))).all()
        )
        purged = await retention_service.purge_clue_rows(session, clue_id=clue_id, actor="test")
        await session.commit()
    assert len(kept_blobs) == 2 and kept_blobs <= set(purged.blobs)


# --- The receipt holder's side under least privilege (PostgreSQL) ---------------------------------------


def as_role(url: str, role: str) -> str:
    return f"postgresql+asyncpg://{role}@{url.split('@', 1)[1]}"


async def test_the_status_page_reads_files_and_objections_as_the_intake_role(tmp_path: Path) -> None:
    """The public side connected as the intake role (row-level security to the receipt's clue, no case-key
    column): the staff file downloads, the objection is made and its answer read."""
    url = await create_pg_database()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "data"
    try:
        async with running_app(data_dir, url, database_auto_upgrade=True) as harness:
            world = await make_world(harness)
            sup = world.supervisor[1]
            clue_id, code = await _tip(harness, world, anonymous=False)
            await _concluded(harness, world, clue_id)
            sent = await harness.client.post(
                f"/api/v1/clues/{clue_id}/messages/file", content=jpeg_with_gps(), headers=auth(sup)
            )
            assert sent.status_code == 201, sent.text
            engine = create_engine(url)
            async with engine.begin() as connection:
                intake, _ = await apply_roles(connection, prefix=prefix)
            await engine.dispose()
            public = create_app(make_settings(data_dir, as_role(url, intake)), frozenset({"intake"}))
            async with public.router.lifespan_context(public):
                transport = httpx.ASGITransport(app=public)
                async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as client:
                    page = await open_status(client, code)
                    assert page.status_code == 200 and 'action="/status/objection"' in page.text
                    form = [m for m in page.text.split("<form") if 'action="/status/file"' in m][0]
                    download = await client.post("/status/file", data=hidden_fields("<form" + form))
                    assert download.status_code == 200 and download.content[:2] == b"\xff\xd8"
                    made = await client.post(
                        "/status/objection", data={**hidden_fields(page.text), "text": "我对结论有异议。"}
                    )
                    assert made.status_code == 200 and "已收到，等待处理" in made.text, made.text
                    (objection,) = (
                        await harness.client.get(f"/api/v1/clues/{clue_id}/objections", headers=auth(sup))
                    ).json()
                    rejected = await harness.client.post(
                        f"/api/v1/objections/{objection['id']}/decision",
                        json={"decision": "reject", "text": "异议理由不成立。"},
                        headers=auth(sup),
                    )
                    assert rejected.status_code == 200
                    answered = await client.post("/api/v1/receipt/status", json={"receipt": code})
                    assert answered.json()["objections"][0]["answer"] == "异议理由不成立。"
    finally:
        await drop_pg_database(url)
        admin = await pg_admin()
        for role in (f"{prefix}_intake", f"{prefix}_staff"):
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def test_an_objection_keeps_the_accused_readable_and_masks_the_reporter(harness: Harness) -> None:
    """The reporter's words are masked by the one rule, with the clue's keyed accused-name digests: staff read
    the accused's name, not the reporter's own."""
    world = await make_world(harness)
    accused = "郑国梁"
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": unique("派出所副所长收了红包，案子一直压着不立案。"),
            "accused": {"name": accused, "unit": world.accused_unit_name, "position": "副所长"},
            "anonymous": False,
            "submitter": {"name": "罗晓燕", "phone": "13800138000"},
        },
    )
    assert response.status_code == 201, response.text
    code = response.json()["receipt"].replace(" ", "").replace("-", "")
    clue_id = await clue_of_receipt(harness, code)
    await _concluded(harness, world, clue_id)
    words = f"我叫罗晓燕，电话{PHONE}。我不同意结论，{accused}副所长收钱的事有证人。"
    made = await harness.client.post("/api/v1/receipt/objections", json={"receipt": code, "text": words})
    assert made.status_code in (200, 201), made.text
    (objection,) = (
        await harness.client.get(f"/api/v1/clues/{clue_id}/objections", headers=auth(world.investigator[1]))
    ).json()
    assert accused in objection["statement"]
    assert "罗晓燕" not in objection["statement"] and PHONE not in objection["statement"]
