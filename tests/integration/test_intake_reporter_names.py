"""Through HTTP, on SQLite and PostgreSQL: a report's self-identification, signature line and a relative
named to identify the reporter reach staff as ［姓名］, while the accused person (the structured field and
its mentions in the text) and the officials and units the report is about stay readable."""

from __future__ import annotations

from tests.helpers.app import Harness, auth, unique
from tests.helpers.registry import make_world


async def test_reporter_names_masked_accused_name_readable(harness: Harness) -> None:
    world = await make_world(harness)
    accused = "孙立军"
    text = (
        f"我是李建国，男，家在城关镇。城关派出所所长{accused}收受赌场老板好处，我儿子张小明去年被打伤，"
        f"{accused}一直压着不办，民警王海涛也知情。{unique('编号')}\n此致 敬礼\n举报人：李建国\n2026年3月1日"
    )
    response = await harness.client.post(
        "/api/v1/tips", json={"text": text, "accused": {"name": accused, "unit": world.accused_unit_name}}
    )
    assert response.status_code == 201, response.text
    number = response.json()["registry_number"]
    sup = auth(world.supervisor[1])
    # By number: an anonymous report keeps only the hour, so it need not be first in "newest first".
    found = (
        await harness.client.get("/api/v1/clue-search", params={"registry_number": number}, headers=sup)
    ).json()
    [clue_id] = [c["id"] for c in found if c["registry_number"] == number]
    clue = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=sup)).json()
    shown = clue["text"]
    assert "李建国" not in shown and "张小明" not in shown, shown
    assert shown.count("［姓名］") == 3, shown
    assert shown.count(accused) == 2 and "王海涛" in shown and "城关派出所" in shown, shown


async def test_accused_name_readable_in_a_follow_up_reporter_name_masked(harness: Harness) -> None:
    """The public side masks a follow-up without the case key: the clue's keyed accused-name digests
    (``clues.accused_names``) keep the accused readable for the assigned investigator."""
    from sqlalchemy import select

    from service.registry.models import Clue
    from tests.helpers.registry import step

    world = await make_world(harness)
    accused = "孙立军"
    response = await harness.client.post(
        "/api/v1/tips",
        json={
            "text": f"城关派出所所长{accused}收受赌场老板好处。{unique('编号')}",
            "accused": {"name": accused, "unit": world.accused_unit_name},
        },
    )
    assert response.status_code == 201, response.text
    number, code = response.json()["registry_number"], response.json()["receipt"]
    async with harness.runtime.session_factory() as session:
        clue = await session.scalar(select(Clue).where(Clue.registry_number == number))
    assert clue is not None and clue.accused_names and accused.encode() not in clue.accused_names
    assert (await step(harness, clue.id, world.supervisor[1], "triage")).status_code == 201
    sent = await harness.client.post(
        "/api/v1/receipt/messages",
        json={"text": f"我是{accused}的邻居，我叫王秀英。{accused}昨天又收了钱。"},
        headers={"X-Receipt-Code": code},
    )
    assert sent.status_code == 201, sent.text
    thread = await harness.client.get(
        f"/api/v1/clues/{clue.id}/messages", headers=auth(world.investigator[1])
    )
    assert thread.status_code == 200, thread.text
    (shown,) = [m["text"] for m in thread.json()]
    assert shown.count(accused) == 2 and "王秀英" not in shown and "［姓名］" in shown, shown
