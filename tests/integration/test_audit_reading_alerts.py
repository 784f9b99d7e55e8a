"""The bulk-reading alert counts every way staff read clues: each clue read one by one (content, history,
classification, additions, messages, attachments, …) and every clue in a search result or an export, not the
export as one object."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from service.audit import checkpoints
from service.platform.timeutil import utcnow
from service.registry.models import Clue
from tests.helpers import REPO_ROOT
from tests.helpers.app import auth, unique

READ_WORDS = re.compile(r"read|download|export|search|list|view")


def test_every_audited_read_action_counts() -> None:
    """Every action the code audits whose name says it reads is counted by the alert (per object or in
    bulk); a new read action that is not fails here."""
    audited = set()
    for path in (REPO_ROOT / "service").rglob("*.py"):
        audited |= set(re.findall(r'action="([a-z_.]+)"', path.read_text(encoding="utf-8")))
    # marking a code read out; the alert itself; a reporter fetching a file staff sent (not a staff read)
    not_reads = {"receipt.read_aloud", "alert.unusual_reading", "attachment.reporter_downloaded"}
    reads = {a for a in audited if READ_WORDS.search(a) and a not in not_reads}
    counted = set(checkpoints.READ_ACTIONS) | set(checkpoints.BULK_READ_ACTIONS)
    assert reads, "no read action found: the pattern is wrong"
    assert reads <= counted, f"read actions the alert ignores: {sorted(reads - counted)}"
    assert "clue.search" in counted and "search.performed" not in counted


async def _alerts_for(harness, staff_id: str, threshold: int) -> int:  # type: ignore[no-untyped-def]
    async with harness.runtime.session_factory() as session:
        found = await checkpoints.unusual_reading(
            session, since=utcnow() - timedelta(minutes=5), threshold=threshold
        )
    mine = [f for f in found if f.actor == f"staff:{staff_id}"]
    return mine[0].distinct_clues if mine else 0


async def test_history_reads_searches_and_exports_count(harness) -> None:  # type: ignore[no-untyped-def]
    # Made before the clues: supervisors then hold their wraps (compartments), so the history opens.
    historian_id, historian = await harness.add_staff(unique("科长"), ["supervisor"])
    numbers = []
    for i in range(5):
        response = await harness.client.post("/api/v1/tips", json={"text": f"第{i}条：民警收红包后不立案。"})
        assert response.status_code == 201
        numbers.append(response.json()["registry_number"])
    async with harness.runtime.session_factory() as session:
        clue_ids = list(await session.scalars(select(Clue.id).where(Clue.registry_number.in_(numbers))))
    assert len(clue_ids) == 5

    # History only (never counted before): five clues read, one by one.
    for clue_id in clue_ids:
        response = await harness.client.get(f"/api/v1/clues/{clue_id}/history", headers=auth(historian))
        assert response.status_code == 200
    assert await _alerts_for(harness, historian_id, threshold=4) >= 5

    # One ledger export of many rows counts each row, not one object.
    exporter_id, exporter = await harness.add_staff(unique("科长"), ["supervisor"])
    response = await harness.client.get("/api/v1/ledger.csv", headers=auth(exporter))
    assert response.status_code == 200
    rows = response.text.count("\n") - 1
    assert rows >= 5
    assert await _alerts_for(harness, exporter_id, threshold=4) >= rows

    # A search (audited as clue.search, which the alert used to miss) counts its results.
    searcher_id, searcher = await harness.add_staff(unique("科长"), ["supervisor"])
    response = await harness.client.get(
        "/api/v1/clue-search", params={"status": "registered", "limit": 5}, headers=auth(searcher)
    )
    assert response.status_code == 200 and len(response.json()) == 5
    assert await _alerts_for(harness, searcher_id, threshold=4) == 5

    # Below the threshold nothing is raised.
    assert await _alerts_for(harness, searcher_id, threshold=5) == 0
