"""``tipline dev seed`` data: properly sealed per clue, found by accused-person search, exported."""

from __future__ import annotations

from sqlalchemy import func, select

from service.compartments.models import ClueKeyWrap
from service.registry import recusal
from service.registry.models import NO_CASE_COPY, Clue
from service.registry.seed import seed_clues
from tests.helpers.app import Harness, auth, unique
from tests.helpers.registry import clue_fields


async def test_seeded_clues_open_search_and_export(harness: Harness) -> None:
    prefix = "S" + unique("x")[-6:].upper().replace("-", "")
    _, token = await harness.add_staff(unique("sup"), ["supervisor"])  # before the seed: holds wraps
    report = await seed_clues(
        harness.runtime.session_factory,
        keys=harness.runtime.keys,
        accused_index_key=harness.runtime.lookup_key("accused-index"),
        words_key=harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL),
        count=120,
        prefix=prefix,
        investigators=4,
        batch=50,
    )
    assert report.clues == 120
    async with harness.runtime.session_factory() as session:
        clues = list(
            (
                await session.execute(select(Clue).where(Clue.registry_number.startswith(prefix + "-")))
            ).scalars()
        )
        assert len(clues) == 120 and len({c.registry_number for c in clues}) == 120
        sample = clues[0]
        accused = (await clue_fields(harness, sample.id))["accused"]
        assert sample.content == NO_CASE_COPY  # compartmented like intake's: no case-key copy
        assert all(c.identity is None for c in clues)
        same = await session.scalar(select(func.count()).where(Clue.accused_key == sample.accused_key))
        # Compartmented like intake's: the assignee's and the unit's wraps where assigned, recusal digests.
        assigned = next(c for c in clues if c.assignee_id)
        reasons = {
            w.reason
            for w in await session.scalars(select(ClueKeyWrap).where(ClueKeyWrap.clue_id == assigned.id))
        }
        assert {"supervisor", "assignee", "unit"} <= reasons
        assert all(c.accused_words for c in clues)
    opened = await harness.client.get(f"/api/v1/clues/{sample.id}", headers=auth(token))
    assert opened.status_code == 200 and opened.json()["accused"]["name"] == accused["name"]
    response = await harness.client.get(
        "/api/v1/clue-search",
        headers=auth(token),
        params={"accused_name": accused["name"], "accused_unit": accused["unit"], "limit": 200},
    )
    assert response.status_code == 200
    hits = response.json()
    assert sample.registry_number in {h["registry_number"] for h in hits}
    assert all(h["same_accused_count"] == same for h in hits)
    response = await harness.client.get("/api/v1/ledger.csv", headers=auth(token))
    assert response.status_code == 200 and sample.registry_number in response.text
