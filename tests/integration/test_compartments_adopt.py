"""`tipline compartments adopt`: clues registered before compartments are moved into them, on both databases
and both crypto suites. An old clue (made with ``make_old``: fields, messages, additions, file keys and
transition reasons under the case key) is read by its holders exactly as before, refused to a supervisor
who came later, and opens nothing to the thief of a staff server; an interrupted run resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.app.runtime import load_keys
from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.compartments.models import ClueKeyWrap, ClueSealed
from service.custody import service as custody
from service.registry import recusal
from service.registry.models import NO_CASE_COPY, Clue
from tests.helpers.app import Harness, auth, cli_env, run_cli, running_app, unique
from tests.helpers.hotline import call_body
from tests.helpers.registry import make_old, seal_case_copy, seal_items_to_case
from tests.helpers.thief import every_row, thiefs_ring, what_opens
from tests.helpers.web import clue_of_receipt, open_status, post_reply, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _reads(harness: Harness, token: str, clue_id: str) -> dict[str, Any]:
    """What a holder reads of a clue through the API: its text, messages, history, additions and files."""
    client, api = harness.client, f"/api/v1/clues/{clue_id}"
    found: dict[str, Any] = {}
    for path in ("", "/messages", "/history", "/additions", "/attachments"):
        response = await client.get(api + path, headers=auth(token))
        assert response.status_code == 200, (path, response.text)
        found[path] = response.json()
    found["files"] = []
    for row in found["/attachments"]:
        download = await client.get(f"/api/v1/attachments/{row['id']}", headers=auth(token))
        assert download.status_code == 200, download.text
        found["files"].append(download.content)
    found[""] = {k: found[""][k] for k in ("text", "accused", "registry_number") if k in found[""]}
    return found


async def _is_old(harness: Harness, clue_id: str) -> bool:
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        sealed = await session.get(ClueSealed, clue_id)
        wraps = list(await session.scalars(select(ClueKeyWrap).where(ClueKeyWrap.clue_id == clue_id)))
    assert clue is not None
    old = sealed is None and not wraps and clue.content != NO_CASE_COPY
    adopted = sealed is not None and bool(wraps) and clue.content == NO_CASE_COPY
    assert old or adopted, "a clue is either fully old or fully adopted"
    return old


@pytest.mark.parametrize("suite", ["international", "national"])
async def test_old_clues_are_adopted_read_as_before_and_a_stopped_run_resumes(
    suite: str, fresh_database_url: str, tmp_path: Path
) -> None:
    async with running_app(
        tmp_path / "data", fresh_database_url, database_auto_upgrade=True, crypto_suite=suite
    ) as harness:
        await _adopt_and_read(harness, suite)


async def _adopt_and_read(harness: Harness, suite: str) -> None:
    client = harness.client
    tag = unique("")
    words = {
        "web": f"区财政局科长钱某某收受供应商礼金{tag}",
        "web_file": f"礼金收据{tag}",
        "follow_up": f"补充他又收了三万{tag}",
        "reply_file": f"转账截图{tag}",
        "note": f"已调取银行流水{tag}",
    }
    unit = await harness.add_unit(unique("区纪委监委第二室"))
    _, supervisor = await harness.add_staff(
        unique("督办"), ["supervisor"], await harness.add_unit(unique("办"))
    )
    investigator_id, investigator = await harness.add_staff(unique("核查"), ["investigator"], unit)
    _, operator = await harness.add_staff(unique("接线员"), ["operator"])

    response = await post_report(
        client,
        {"text": words["web"], "accused_name": f"钱某某{tag}"},
        files=[("收据.txt", words["web_file"].encode())],
    )
    code = receipt_from(response.text)
    web = await clue_of_receipt(harness, code)
    call = await client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    assert call.status_code == 201, call.text
    called = call.json()["clue_id"]
    ids = [web, called]
    for clue_id in ids:
        await make_old(harness, clue_id)
        assert await _is_old(harness, clue_id)
    # Items written while the clue is old go to the case key: a follow-up with a file, an assignment, a note.
    page = await open_status(client, code)
    reply = await post_reply(
        client, page.text, words["follow_up"], files=[("截图.txt", words["reply_file"].encode())]
    )
    assert reply.status_code == 200, reply.text
    for clue_id in ids:
        assigned = await client.post(
            f"/api/v1/clues/{clue_id}/assign", headers=auth(supervisor), json={"assignee_id": investigator_id}
        )
        assert assigned.status_code == 200, assigned.text
    note = await client.post(
        f"/api/v1/clues/{web}/notes", json={"text": words["note"]}, headers=auth(supervisor)
    )
    assert note.status_code == 201, note.text

    holders = (supervisor, investigator)
    before = {(t, c): await _reads(harness, t, c) for t in holders for c in ids}
    assert words["follow_up"] in str(before[(supervisor, web)]["/messages"])
    assert words["note"] in str(before[(supervisor, web)]["/history"])
    assert before[(supervisor, called)]["/additions"]
    assert words["web_file"].encode() in before[(supervisor, web)]["files"]
    assert words["reply_file"].encode() in before[(supervisor, web)]["files"]
    ring = thiefs_ring(harness)
    secret = [w.encode() for w in words.values()]
    opened, _ = what_opens(await every_row(harness), ring, [], set(ids))
    assert {"clues.content", "messages.body", "attachments.wrapped_key", "clue_transitions.sealed"} <= set(
        opened
    )
    assert "clue_additions.content" in opened

    env = {**cli_env(harness.data_dir, harness.database_url), "TIPLINE_CRYPTO_SUITE": suite}
    counted = run_cli(["compartments", "adopt", "--dry-run"], env)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.startswith("2 clue(s) to adopt")
    assert [await _is_old(harness, c) for c in ids] == [True, True]  # a dry run changes nothing

    stopped = run_cli(["compartments", "adopt", "--chunk", "1", "--max-chunks", "1"], env)
    assert stopped.returncode == 0, stopped.stderr
    assert "; 2 left" in stopped.stdout  # one old clue, and the adopted one still to examine for items
    assert sorted([await _is_old(harness, c) for c in ids]) == [False, True]
    resumed = run_cli(["compartments", "adopt", "--chunk", "1"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "adopted 1 clue(s)" in resumed.stdout and "0 left" in resumed.stdout
    assert [await _is_old(harness, c) for c in ids] == [False, False]
    again = run_cli(["compartments", "adopt"], env)
    assert again.returncode == 0 and "adopted 0 clue(s)" in again.stdout

    for key, read in before.items():
        assert await _reads(harness, *key) == read, key
    _, late = await harness.add_staff(unique("新督办"), ["supervisor"])
    for clue_id, paths in ((web, ("", "/messages", "/history")), (called, ("", "/additions"))):
        for path in paths:  # each a read of something sealed to the clue
            refused = await client.get(f"/api/v1/clues/{clue_id}{path}", headers=auth(late))
            assert refused.status_code == 403, (path, refused.text)
    for row in before[(supervisor, web)]["/attachments"]:
        assert (await client.get(f"/api/v1/attachments/{row['id']}", headers=auth(late))).status_code == 403
    opened, envelopes = what_opens(await every_row(harness), ring, secret, set(ids))
    assert envelopes > 0 and opened == [], f"the staff server's keys open {opened}"

    async with harness.runtime.session_factory() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.like("compartments.adopt_%"))
                .order_by(AuditEntry.id)
            )
        )
    actions = [entry.action for entry in entries]
    assert (
        actions.count("compartments.adopt_started") == 3 and actions.count("compartments.adopt_finished") == 3
    )
    # stopped: 1 chunk; resumed: the last old clue, then each adopted clue examined (chunk 1); again: 1 chunk
    assert actions.count("compartments.adopt_progress") == 1 + 3 + 1
    assert all(tag not in str(entry.details) for entry in entries)


async def test_case_key_items_of_compartmented_clues_are_resealed_to_the_clue(
    fresh_database_url: str, tmp_path: Path
) -> None:
    async with running_app(tmp_path / "data", fresh_database_url, database_auto_upgrade=True) as harness:
        await _settle_and_read(harness)


async def _settle_and_read(harness: Harness) -> None:
    """Two compartmented clues hold items written before they were sealed to the clue (a follow-up message,
    a note, a custody request reason, on the case key); the second was registered before clues had a
    public half (``clue_sealed.public`` NULL, the case-key copy of its fields still on the row). One run of
    adopt settles both: afterwards a staff server with no case private key opens everything for the holder,
    exactly as before, and the thief's keys open nothing."""
    client = harness.client
    tag = unique("")
    words = {
        "web": f"区财政局科长钱某某收受供应商礼金{tag}",
        "older": f"区住建局科员孙某某索要好处费{tag}",
        "follow_up": f"补充他又收了三万{tag}",
        "note": f"已调取银行流水{tag}",
        "reason": f"实名举报人需当面核实{tag}",
    }
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"], await harness.add_unit(unique("办")))
    custodian = unique("保管人")
    await harness.add_staff(custodian, ["custodian"])
    ids, requests = [], []
    for text in (words["web"], words["older"]):
        code = receipt_from((await post_report(client, {"text": text, "accused_name": f"钱某{tag}"})).text)
        clue_id = await clue_of_receipt(harness, code)
        ids.append(clue_id)
        reply = await post_reply(client, (await open_status(client, code)).text, words["follow_up"])
        assert reply.status_code == 200, reply.text
        note = await client.post(
            f"/api/v1/clues/{clue_id}/notes", json={"text": words["note"]}, headers=auth(holder)
        )
        assert note.status_code == 201, note.text
        async with harness.runtime.session_factory() as session:
            row = await custody.request_release(
                session,
                clue_id=clue_id,
                requester=custodian,
                reason=words["reason"],
                kind="contact",  # an anonymous report: the kind that needs no identity
                keys=harness.runtime.keys,
                words_key=harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL),
            )
            requests.append(row.id)
            await session.commit()
    web, older = ids
    for clue_id in ids:  # written before items were sealed to the clue: message, note, reason at least
        assert await seal_items_to_case(harness, clue_id) >= 3
    await seal_case_copy(harness, older)
    async with harness.runtime.session_factory() as session:
        (await session.get(ClueSealed, older)).public = None  # type: ignore[union-attr]
        await session.commit()
        wrapped_to = {
            c: set(await session.scalars(select(ClueKeyWrap.key_id).where(ClueKeyWrap.clue_id == c)))
            for c in ids
        }
    before = {c: await _reads(harness, holder, c) for c in ids}
    assert words["older"] in before[older][""]["text"] and words["follow_up"] in str(before[web]["/messages"])
    assert words["note"] in str(before[older]["/history"])

    env = cli_env(harness.data_dir, harness.database_url)
    counted = run_cli(["compartments", "adopt", "--dry-run"], env)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.startswith("0 clue(s) to adopt") and "2 compartmented clue(s)" in counted.stdout
    settled = run_cli(["compartments", "adopt", "--chunk", "1"], env)
    assert settled.returncode == 0, settled.stderr
    assert "settled 1 clue(s)" in settled.stdout and "; 0 left" in settled.stdout
    counted = run_cli(["compartments", "adopt", "--dry-run"], env)
    assert counted.stdout.startswith("0 clue(s) to adopt, 0 case-key item(s) to reseal; 0 compartmented")

    # The thief's ring here still holds the case key (development material): it opens nothing now.
    secret = [w.encode() for w in words.values()]
    opened, envelopes = what_opens(await every_row(harness), thiefs_ring(harness), secret, set(ids))
    assert envelopes > 0 and opened == [], f"the staff server's keys open {opened}"
    async with harness.runtime.session_factory() as session:
        for clue_id in ids:
            clue, sealed = await session.get(Clue, clue_id), await session.get(ClueSealed, clue_id)
            assert clue is not None and clue.content == NO_CASE_COPY and sealed is not None and sealed.public
            keys = set(
                await session.scalars(select(ClueKeyWrap.key_id).where(ClueKeyWrap.clue_id == clue_id))
            )
            assert keys == wrapped_to[clue_id]  # the same readers, none more

    # A staff server holding no case private key: the holder reads everything as before.
    for path in harness.data_dir.rglob("case*.private.json"):
        path.unlink()
    harness.runtime.keys = load_keys(harness.runtime.settings, harness.runtime.roles)
    assert not harness.runtime.keys.can_open("case")
    for clue_id in ids:
        assert await _reads(harness, holder, clue_id) == before[clue_id]
    async with harness.runtime.session_factory() as session:
        viewer = await auth_service.authenticate(session, holder)
        views = await custody.list_requests(session, keys=harness.runtime.keys, viewer=viewer)
    assert [v.reason for v in views if v.request.id in requests] == [words["reason"]] * 2
