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
    listed = (await harness.client.get("/api/v1/clues", params={"q": number}, headers=sup)).json()
    [clue_id] = [c["id"] for c in listed["items"] if c["registry_number"] == number]
    clue = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=sup)).json()
    shown = clue["text"]
    assert "李建国" not in shown and "张小明" not in shown, shown
    assert shown.count("［姓名］") == 3, shown
    assert shown.count(accused) == 2 and "王海涛" in shown and "城关派出所" in shown, shown
