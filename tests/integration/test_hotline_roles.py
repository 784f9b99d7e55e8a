"""Role checks on the hotline, letters, visits and staff-source API run before the body is validated:
a caller without the role gets 403 whatever they sent, never a 422 describing the expected body."""

from __future__ import annotations

import pytest

from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import call_body

# (path, the role that may post there, a role that may not)
ROUTES = [
    ("/api/v1/hotline/calls", "operator", "investigator"),
    ("/api/v1/hotline/additions", "operator", "supervisor"),
    ("/api/v1/letters", "operator", "investigator"),
    ("/api/v1/visits", "operator", "supervisor"),
    ("/api/v1/staff-sources", "supervisor", "investigator"),
    ("/api/v1/staff-sources", "supervisor", "operator"),
]
INVALID_BODIES = [{}, {"unexpected": "field"}, [1, 2, 3], {"source": "superior_assigned", "text": 5}]


@pytest.mark.parametrize(("path", "allowed", "refused"), ROUTES)
async def test_wrong_role_with_an_invalid_body_gets_403(
    harness: Harness, path: str, allowed: str, refused: str
) -> None:
    _, wrong = await harness.add_staff(unique(refused[:3]), [refused])
    _, right = await harness.add_staff(unique(allowed[:3]), [allowed])
    for body in INVALID_BODIES:
        response = await harness.client.post(path, json=body, headers=auth(wrong))
        assert response.status_code == 403, (path, body, response.text)
        assert response.json()["error"]["code"] == "forbidden"
        assert "fields" not in response.json()["error"]
        # The right role with the same body is told what is wrong with it.
        assert (await harness.client.post(path, json=body, headers=auth(right))).status_code == 422


async def test_wrong_role_on_uploads_gets_403_before_anything_is_read(harness: Harness) -> None:
    _, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    for path in ("/api/v1/hotline/calls/nope/recording", "/api/v1/letters/nope/pages"):
        response = await harness.client.post(
            path, content=b"not a file", headers={**auth(investigator), "content-type": "audio/mpeg"}
        )
        assert response.status_code == 403, response.text


async def test_no_token_is_401_even_with_an_invalid_body(harness: Harness) -> None:
    response = await harness.client.post("/api/v1/hotline/calls", json={})
    assert response.status_code == 401


async def test_supervisor_reads_the_additions_operator_cannot(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    _, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    made = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    clue_id = made.json()["clue_id"]
    response = await harness.client.get(f"/api/v1/clues/{clue_id}/additions", headers=auth(supervisor))
    assert response.status_code == 200, response.text
    [record] = response.json()
    assert record["kind"] == "call_record" and "通风报信" in record["content"]["summary"]
    for other in (operator, investigator):  # not assigned to the investigator; operators read no clues
        denied = await harness.client.get(f"/api/v1/clues/{clue_id}/additions", headers=auth(other))
        assert denied.status_code == 404
