"""Every registry endpoint against every role (and no token), on both databases.

Allowed roles must get past authorisation (any answer but 401/403); others get 403, or 404 where the clue
is not theirs to see (the two look the same by design). Bodies are minimal: a refusal on content (404, 409,
422) still proves the role check let the caller through."""

from __future__ import annotations

from datetime import date

import pytest

from tests.helpers.app import Harness, auth, unique

ROLES = ["operator", "investigator", "supervisor", "custodian", "admin"]
TODAY = date.today().isoformat()

# (method, path, json body, roles allowed past the check)
ENDPOINTS = [
    ("POST", "/api/v1/clues/{clue}/transitions", {"action": "triage", "reason": "x"}, {"supervisor"}),
    ("GET", "/api/v1/clues/{clue}/history", None, {"supervisor"}),
    ("GET", "/api/v1/clues/{clue}/actions", None, {"supervisor"}),
    ("GET", "/api/v1/clues/{clue}/related", None, {"supervisor"}),
    ("POST", "/api/v1/clues/{clue}/notes", {"text": "x"}, {"supervisor"}),
    ("POST", "/api/v1/clues/{clue}/acceptance-notice", None, {"supervisor"}),
    ("GET", "/api/v1/clues/{clue}/transfers", None, {"supervisor"}),
    ("POST", "/api/v1/clues/{clue}/transfers/none/feedback", None, {"supervisor"}),
    ("GET", "/api/v1/stats/quarterly?year=2026&quarter=1", None, {"supervisor"}),
    ("POST", "/api/v1/clues/{clue}/reassign", {"assignee_id": "nobody", "reason": "x"}, {"supervisor"}),
    ("PUT", "/api/v1/clues/{clue}/supervision", {"key_clue": False, "reason": "x"}, {"supervisor"}),
    ("GET", "/api/v1/supervision", None, {"supervisor"}),
    ("POST", "/api/v1/reminders/scan", None, {"supervisor"}),
    ("POST", "/api/v1/clues/{clue}/progress-requests", {"due_on": TODAY}, {"supervisor"}),
    ("GET", "/api/v1/clues/{clue}/progress-requests", None, {"supervisor"}),
    ("POST", "/api/v1/progress-requests/none/report", {"report": "x"}, {"supervisor", "investigator"}),
    (
        "POST",
        "/api/v1/clues/{clue}/consultations",
        {"held_on": TODAY, "participants": ["a", "b"], "conclusion": "x"},
        {"supervisor"},
    ),
    ("GET", "/api/v1/clues/{clue}/consultations", None, {"supervisor"}),
    ("GET", "/api/v1/clue-search?registry_number=LG", None, {"supervisor"}),
    ("GET", "/api/v1/ledger.csv?status=archived&source=self_inspection", None, {"supervisor"}),
    ("GET", "/api/v1/ledger.xlsx?status=archived&source=self_inspection", None, {"supervisor"}),
    ("GET", "/api/v1/stats/overview", None, {"supervisor"}),
    ("GET", "/api/v1/stats/trends", None, {"supervisor"}),
    ("GET", "/api/v1/stats/overdue", None, {"supervisor"}),
    ("GET", f"/api/v1/brief?start={TODAY}&end={TODAY}", None, {"supervisor"}),
    ("GET", f"/api/v1/brief.xlsx?start={TODAY}&end={TODAY}", None, {"supervisor"}),
    ("GET", "/api/v1/routing-rules", None, {"supervisor", "admin"}),
    ("POST", "/api/v1/routing-rules", {"handling_unit_id": "none"}, {"admin"}),
    ("PUT", "/api/v1/routing-rules/none", {"handling_unit_id": "none"}, {"admin"}),
    ("GET", "/api/v1/deadline-rules", None, {"supervisor", "admin"}),
    ("POST", "/api/v1/deadline-rules", {"stage": "none", "working_days": 1}, {"admin"}),
    ("DELETE", "/api/v1/deadline-rules/none", None, {"admin"}),
]


@pytest.fixture
async def tokens_and_clue(harness: Harness) -> tuple[dict[str, str], str]:
    tokens = {role: (await harness.add_staff(unique(role), [role]))[1] for role in ROLES}
    response = await harness.client.post("/api/v1/tips", json={"text": "派出所民警收红包。"})
    clues = await harness.client.get(
        "/api/v1/clue-search",
        headers=auth(tokens["supervisor"]),
        params={"registry_number": response.json()["registry_number"]},
    )
    return tokens, clues.json()[0]["id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
async def test_role_matrix(
    harness: Harness,
    tokens_and_clue: tuple[dict[str, str], str],
    method: str,
    path: str,
    body: object,
    allowed: set[str],
) -> None:
    tokens, clue_id = tokens_and_clue
    url = path.format(clue=clue_id)
    response = await harness.client.request(method, url, json=body)
    assert response.status_code == 401
    for role, token in tokens.items():
        response = await harness.client.request(method, url, json=body, headers=auth(token))
        if role in allowed:
            assert response.status_code not in (401, 403) and response.status_code < 500, (
                role,
                response.text,
            )
        else:
            assert response.status_code in (403, 404), (role, response.status_code, response.text)
            assert response.json()["error"]["message_en"]
