"""The caller reads the operator's record of the call on the status page and confirms or corrects it,
through real HTTP (httpx against the app), on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import select

from service.audit.models import AuditEntry
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import call_body
from tests.helpers.web import hidden_fields, open_status, post_report, receipt_from

FORM = re.compile(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', re.S)


def form_fields(html: str, action: str) -> dict[str, str]:
    for found, body in FORM.findall(html):
        if found == action:
            return hidden_fields(body)
    raise AssertionError(f"no form posting to {action}")


async def _call(harness: Harness, **overrides: object) -> tuple[str, str, str, str]:
    """(clue id, spoken code, summary, a supervisor's token): the supervisor exists before the call, so
    the clue's key is wrapped to them (compartments) and they read its additions."""
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    summary = unique("来电人反映派出所民警索要好处费")
    made = await harness.client.post(
        "/api/v1/hotline/calls", json=call_body(summary=summary, **overrides), headers=auth(operator)
    )
    assert made.status_code == 201, made.text
    return made.json()["clue_id"], made.json()["receipt"], summary, supervisor


async def _audit(harness: Harness, clue_id: str) -> list[str]:
    async with harness.runtime.session_factory() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.object_id == clue_id)
        )
        return [action for action, actor in rows if actor == "public"]


async def test_caller_replaces_code_reads_the_record_and_confirms(harness: Harness) -> None:
    client = harness.client
    clue_id, spoken, summary, supervisor = await _call(harness)
    status = await open_status(client, spoken)
    assert status.status_code == 200
    new_code = receipt_from(status.text)
    assert new_code != spoken.replace(" ", "")
    # The status page offers the record through a form carrying the new code (never in a URL).
    assert "/status/call-record?" not in status.text and new_code not in str(status.url)
    fields = form_fields(status.text, "/status/call-record")
    assert fields["code"].replace(" ", "") == new_code
    record = await client.post("/status/call-record", data=fields)
    assert record.status_code == 200, record.text
    assert record.headers["cache-control"] == "no-store"
    assert summary in record.text and "交了两万块钱" in record.text  # the summary and the caller's words
    assert "只在工作日晚上打" in record.text
    confirm = {**form_fields(record.text, "/status/call-record/confirm"), "decision": "confirm"}
    done = await client.post("/status/call-record/confirm", data=confirm)
    assert done.status_code == 200, done.text
    assert "您的确认已随举报一并保存" in done.text and "您已确认记录准确" in done.text
    # A supervisor sees the confirmation with the clue.
    additions = await client.get(f"/api/v1/clues/{clue_id}/additions", headers=auth(supervisor))
    kinds = [(a["kind"], a["content"].get("confirmed")) for a in additions.json()]
    assert kinds == [("call_record", None), ("caller_confirmation", True)]
    actions = await _audit(harness, clue_id)
    assert "receipt.replaced" in actions and "clue.caller_confirmed" in actions
    assert actions.count("clue.record_shown_to_caller") == 2  # the record page, then after confirming
    # The spoken code no longer opens anything.
    again = await client.post("/status/call-record", data={**fields, "code": spoken})
    assert again.status_code == 404


async def test_caller_corrects_the_record_in_english(harness: Harness) -> None:
    client = harness.client
    clue_id, spoken, _, supervisor = await _call(harness)
    status = await open_status(client, spoken, lang="en")
    record = await client.post("/status/call-record", data=form_fields(status.text, "/status/call-record"))
    assert "Record of your call" in record.text
    base = form_fields(record.text, "/status/call-record/confirm")
    missing = await client.post("/status/call-record/confirm", data={**base, "decision": "correct"})
    assert missing.status_code == 422 and "Write what should be corrected." in missing.text
    no_choice = await client.post("/status/call-record/confirm", data={**base, "correction": "x"})
    assert no_choice.status_code == 422 and "Choose whether the record is correct" in no_choice.text
    too_long = {**base, "decision": "correct", "correction": "长" * 5001}
    assert (await client.post("/status/call-record/confirm", data=too_long)).status_code == 422
    control = {**base, "decision": "correct", "correction": "bad\x00text"}
    assert (await client.post("/status/call-record/confirm", data=control)).status_code == 422
    correction = "不是两万，是三万；时间是去年冬天。"
    done = await client.post(
        "/status/call-record/confirm", data={**base, "decision": "correct", "correction": correction}
    )
    assert (
        done.status_code == 200 and "Your correction has been kept" in done.text and correction in done.text
    )
    additions = (await client.get(f"/api/v1/clues/{clue_id}/additions", headers=auth(supervisor))).json()
    assert [a["content"].get("correction") for a in additions[1:]] == [correction]  # refusals kept nothing
    assert "clue.caller_corrected" in await _audit(harness, clue_id)


async def test_refusals_change_nothing(harness: Harness) -> None:
    client = harness.client
    clue_id, spoken, _, supervisor = await _call(harness)
    status = await open_status(client, spoken)
    fields = form_fields(status.text, "/status/call-record")
    confirm = {**fields, "decision": "confirm"}
    assert (await client.post("/status/call-record", data={**fields, "csrf": "0" * 40})).status_code == 403
    assert (
        await client.post("/status/call-record/confirm", data={**confirm, "csrf": "x"})
    ).status_code == 403
    other_site = await client.post(
        "/status/call-record/confirm", data=confirm, headers={"Origin": "http://evil.example"}
    )
    assert other_site.status_code == 403
    wrong = await client.post("/status/call-record/confirm", data={**confirm, "code": "1" * 25})
    assert wrong.status_code == 404
    # A web report has no call record: no link on its status page, and nothing to confirm.
    web = await post_report(client, {"text": unique("法官收受当事人财物")})
    web_status = await open_status(client, receipt_from(web.text))
    assert "/status/call-record" not in web_status.text
    web_confirm = {**hidden_fields(web_status.text), "decision": "confirm"}
    refused = await client.post("/status/call-record/confirm", data=web_confirm)
    assert refused.status_code == 422 and "此举报没有来电记录" in refused.text
    additions = (await client.get(f"/api/v1/clues/{clue_id}/additions", headers=auth(supervisor))).json()
    assert [a["kind"] for a in additions] == ["call_record"]
