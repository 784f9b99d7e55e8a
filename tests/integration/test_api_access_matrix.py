"""The role x endpoint matrix, generated from the app's route table (issue 9, access control).

Every route the app serves is called as every role and anonymously. ``EXPECTED`` says, per (method, path),
which ``Action`` of ``service/auth/permissions.py`` (the table docs/roles.md is generated from) governs it, or
that it is public or open to any signed-in staff member. A route without a row fails the test, so a new
endpoint must be classified here before it can ship.

"Allowed" means neither 401 nor 403 (a 404 for a bogus id, a 422 for an empty body are fine); "denied" means
401 (anonymous; 303 to the login page for staff pages) or 403 — or 404 where the route documents that a
clue the caller may not see looks like one that does not exist. Nothing may answer 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx
from fastapi import routing
from sqlalchemy import update

from service.auth.models import ApiToken
from service.auth.permissions import PERMISSIONS, Action, Role
from service.platform.timeutil import utcnow
from tests.helpers.app import Harness, auth, unique
from tests.helpers.staff_web import log_in, make_web_staff

PUBLIC = "public"  # no account needed (intake, status page, login form, health, static files)
ANY_STAFF = "any-staff"  # any signed-in staff member


@dataclass(frozen=True)
class Rule:
    """Who may call a route: one of PUBLIC, ANY_STAFF, or any of ``actions``. ``hidden_404``: a caller without
    the right gets 404 (the clue "does not exist" for them), as the route documents."""

    actions: tuple[Action, ...] | str
    hidden_404: bool = False

    def allows(self, role: Role | None) -> bool:
        if self.actions == PUBLIC:
            return True
        if role is None:
            return False
        if self.actions == ANY_STAFF:
            return True
        return any(role in PERMISSIONS[a] for a in self.actions)  # type: ignore[union-attr]


def r(*actions: Action, hidden_404: bool = False) -> Rule:
    return Rule(tuple(actions), hidden_404)


A = Action
READ_CLUE = (A.read_assigned_clue, A.read_any_clue)
PUB = Rule(PUBLIC)
STAFF = Rule(ANY_STAFF)

EXPECTED: dict[tuple[str, str], Rule] = {
    # --- public: intake, the status page, health, docs --------------------------------------------------
    ("GET", "/"): PUB,
    ("GET", "/report"): PUB,
    ("POST", "/report"): PUB,
    ("GET", "/receipt"): PUB,
    ("GET", "/poster"): PUB,
    ("GET", "/favicon.ico"): PUB,
    ("GET", "/status"): PUB,
    ("POST", "/status"): PUB,
    ("POST", "/status/reply"): PUB,
    ("POST", "/status/call-record"): PUB,
    ("POST", "/status/call-record/confirm"): PUB,
    ("GET", "/static/{name}"): PUB,
    ("POST", "/api/v1/tips"): PUB,
    ("POST", "/api/v1/receipt/status"): PUB,
    ("POST", "/api/v1/receipt/messages"): PUB,
    ("POST", "/api/v1/receipt/objections"): PUB,
    ("POST", "/status/file"): PUB,
    ("POST", "/status/objection"): PUB,
    ("GET", "/healthz"): PUB,
    ("GET", "/livez"): PUB,
    ("GET", "/readyz"): PUB,
    ("GET", "/metrics"): PUB,  # counts with fixed labels only (tests/integration/test_ops_observability.py)
    ("GET", "/openapi.json"): PUB,
    ("GET", "/docs"): PUB,
    ("GET", "/docs/static/{name}"): PUB,
    ("GET", "/staff/login"): PUB,
    ("POST", "/staff/login"): PUB,
    ("GET", "/staff/lang"): PUB,  # the language switch: a cookie saying "en" or "zh"
    ("GET", "/staff/static/staff.css"): PUB,
    # --- any signed-in staff member ---------------------------------------------------------------------
    ("GET", "/staff"): STAFF,
    ("POST", "/staff/logout"): STAFF,
    ("GET", "/api/v1/me"): r(A.read_own_profile),
    ("GET", "/api/v1/me/notifications"): r(A.set_own_notifications),
    ("PUT", "/api/v1/me/notifications"): r(A.set_own_notifications),
    # --- clues ------------------------------------------------------------------------------------------
    ("GET", "/api/v1/me/clues"): r(A.list_assigned_clues),
    ("GET", "/api/v1/clues"): r(A.list_all_clues),
    ("GET", "/api/v1/clues/{clue_id}"): r(*READ_CLUE, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/history"): r(*READ_CLUE, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/actions"): r(*READ_CLUE, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/additions"): r(*READ_CLUE, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/assign"): r(A.assign_clue),
    ("POST", "/api/v1/clues/{clue_id}/recusals"): r(A.assign_clue),
    ("POST", "/api/v1/clues/{clue_id}/reassign"): r(A.decide_clue),
    ("POST", "/api/v1/clues/{clue_id}/transitions"): r(A.handle_clue, A.decide_clue, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/acceptance-notice"): r(A.handle_clue, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/transfer-requests"): r(A.request_transfer, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/documents"): r(A.handle_clue, hidden_404=True),
    ("GET", "/api/v1/transfer-requests"): r(A.decide_clue),
    ("POST", "/api/v1/transfer-requests/{request_id}/decision"): r(A.decide_clue),
    ("PUT", "/api/v1/clues/{clue_id}/supervision"): r(A.supervise_clue),
    ("GET", "/api/v1/supervision"): r(A.supervise_clue),
    ("POST", "/api/v1/reminders/scan"): r(A.supervise_clue),
    ("POST", "/api/v1/clues/{clue_id}/progress-requests"): r(A.supervise_clue),
    ("GET", "/api/v1/clues/{clue_id}/progress-requests"): r(A.report_progress),
    ("POST", "/api/v1/progress-requests/{request_id}/report"): r(A.report_progress),
    ("POST", "/api/v1/clues/{clue_id}/consultations"): r(A.record_consultation),
    ("GET", "/api/v1/clues/{clue_id}/consultations"): r(A.record_consultation),
    ("GET", "/api/v1/clue-search"): r(A.search_clues),
    ("GET", "/api/v1/clues/{clue_id}/related"): r(A.search_clues),
    ("GET", "/api/v1/ledger.{fmt}"): r(A.export_ledger),
    ("GET", "/api/v1/brief.xlsx"): r(A.export_ledger),
    ("GET", "/api/v1/brief"): r(A.view_statistics),
    ("GET", "/api/v1/stats/overview"): r(A.view_statistics),
    ("GET", "/api/v1/stats/trends"): r(A.view_statistics),
    ("GET", "/api/v1/stats/overdue"): r(A.view_statistics),
    ("GET", "/api/v1/stats/quarterly"): r(A.view_statistics),
    ("POST", "/api/v1/clues/{clue_id}/notes"): r(A.handle_clue, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/transfers"): r(*READ_CLUE, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/transfers/{transfer_id}/feedback"): r(A.decide_clue),
    ("GET", "/api/v1/clues/{clue_id}/messages"): r(A.exchange_messages, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/messages"): r(A.exchange_messages, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/messages/file"): r(A.exchange_messages, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/follow-ups"): r(A.record_follow_up, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/follow-ups"): r(A.record_follow_up, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/objections"): r(A.record_objection, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/objections"): r(A.record_objection, hidden_404=True),
    ("POST", "/api/v1/objections/{objection_id}/decision"): r(A.decide_objection),
    ("GET", "/api/v1/clues/{clue_id}/attachments"): r(A.list_attachments, hidden_404=True),
    ("GET", "/api/v1/attachments/{attachment_id}"): r(A.download_attachment, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/classification"): r(A.read_classification, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/classification"): r(A.correct_classification, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/legal-hold"): r(A.manage_legal_hold),
    ("PUT", "/api/v1/clues/{clue_id}/legal-hold"): r(A.manage_legal_hold),
    ("POST", "/api/v1/clues/{clue_id}/dossier"): r(A.export_dossier, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/dossiers"): r(A.export_dossier, hidden_404=True),
    ("GET", "/api/v1/dossiers/{digest}"): r(A.export_dossier, hidden_404=True),
    ("POST", "/api/v1/dossiers/{digest}/feedback"): r(A.record_dossier_feedback),
    ("GET", "/api/v1/dossiers/{digest}/feedback"): r(A.record_dossier_feedback),
    ("POST", "/api/v1/clues/{clue_id}/redactions/texts"): r(A.redact, hidden_404=True),
    ("POST", "/api/v1/attachments/{attachment_id}/redactions"): r(A.redact, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/redactions"): r(A.redact, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/redacted"): r(A.redact, hidden_404=True),
    ("GET", "/api/v1/redactions/{redaction_id}/file"): r(A.redact, hidden_404=True),
    ("POST", "/api/v1/clues/{clue_id}/unmask-requests"): r(A.request_unmask, hidden_404=True),
    ("GET", "/api/v1/clues/{clue_id}/unmask-requests"): r(A.redact, hidden_404=True),
    ("GET", "/api/v1/taxonomy"): r(A.view_taxonomy),
    ("POST", "/api/v1/taxonomy/reload"): r(A.reload_taxonomy),
    # --- rules ------------------------------------------------------------------------------------------
    ("GET", "/api/v1/routing-rules"): r(A.list_routing_rules),
    ("POST", "/api/v1/routing-rules"): r(A.manage_routing_rules),
    ("PUT", "/api/v1/routing-rules/{rule_id}"): r(A.manage_routing_rules),
    ("DELETE", "/api/v1/routing-rules/{rule_id}"): r(A.manage_routing_rules),
    ("GET", "/api/v1/deadline-rules"): r(A.list_routing_rules),
    ("POST", "/api/v1/deadline-rules"): r(A.manage_deadline_rules),
    ("PUT", "/api/v1/deadline-rules/{rule_id}"): r(A.manage_deadline_rules),
    ("DELETE", "/api/v1/deadline-rules/{rule_id}"): r(A.manage_deadline_rules),
    # --- intake by staff --------------------------------------------------------------------------------
    ("POST", "/api/v1/hotline/calls"): r(A.register_call),
    ("POST", "/api/v1/hotline/calls/{clue_id}/recording"): r(A.register_call),
    ("POST", "/api/v1/hotline/additions"): r(A.add_to_call_clue),
    ("POST", "/api/v1/letters"): r(A.register_letter_visit),
    ("POST", "/api/v1/letters/{clue_id}/pages"): r(A.register_letter_visit),
    ("POST", "/api/v1/visits"): r(A.register_letter_visit),
    ("POST", "/api/v1/staff-sources"): r(A.register_staff_source),
    ("GET", "/api/v1/mail/quarantine"): r(A.list_mail_quarantine),
    ("POST", "/api/v1/mail/quarantine/{mail_id}/read"): r(A.read_mail_quarantine),
    # --- accounts ---------------------------------------------------------------------------------------
    ("GET", "/api/v1/units"): r(A.list_units),
    ("POST", "/api/v1/units"): r(A.manage_units),
    ("PUT", "/api/v1/units/{unit_id}"): r(A.manage_units),
    ("POST", "/api/v1/units/{unit_id}/aliases"): r(A.manage_units),
    ("DELETE", "/api/v1/units/{unit_id}/aliases/{alias}"): r(A.manage_units),
    ("GET", "/api/v1/staff"): r(A.list_staff),
    ("POST", "/api/v1/staff"): r(A.manage_staff),
    ("POST", "/api/v1/staff/{staff_id}/disable"): r(A.manage_staff),
    ("PUT", "/api/v1/staff/{staff_id}/unit"): r(A.manage_staff),
    ("POST", "/api/v1/staff/{staff_id}/tokens"): r(A.manage_staff),
    ("POST", "/api/v1/tokens/{token_id}/revoke"): r(A.manage_staff),
    ("POST", "/api/v1/staff/{staff_id}/password"): r(A.manage_staff_login),
    ("POST", "/api/v1/staff/{staff_id}/totp"): r(A.manage_staff_login),
    ("DELETE", "/api/v1/staff/{staff_id}/totp"): r(A.manage_staff_login),
    ("POST", "/api/v1/staff/{staff_id}/sessions/revoke"): r(A.manage_staff_login),
    # --- staff pages (session cookie + CSRF) ------------------------------------------------------------
    ("GET", "/staff/hotline/calls/new"): r(A.register_call),
    ("POST", "/staff/hotline/calls"): r(A.register_call),
    ("GET", "/staff/hotline/calls/{clue_id}/recording"): r(A.register_call),
    ("POST", "/staff/hotline/calls/{clue_id}/recording"): r(A.register_call),
    ("GET", "/staff/hotline/add"): r(A.add_to_call_clue),
    ("POST", "/staff/hotline/add"): r(A.add_to_call_clue),
    ("GET", "/staff/letters/new"): r(A.register_letter_visit),
    ("POST", "/staff/letters"): r(A.register_letter_visit),
    ("GET", "/staff/letters/{clue_id}/pages"): r(A.register_letter_visit),
    ("POST", "/staff/letters/{clue_id}/pages"): r(A.register_letter_visit),
    ("GET", "/staff/visits/new"): r(A.register_letter_visit),
    ("POST", "/staff/visits"): r(A.register_letter_visit),
    ("GET", "/staff/sources/new"): r(A.register_staff_source),
    ("POST", "/staff/sources"): r(A.register_staff_source),
    ("GET", "/staff/registry"): r(A.list_all_clues),
    ("GET", "/staff/registry/brief"): r(A.view_statistics),
    ("GET", "/staff/registry/supervision"): r(A.supervise_clue),
    ("GET", "/staff/registry/clues/{clue_id}"): r(*READ_CLUE, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/assign"): r(A.assign_clue, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/recusals"): r(A.assign_clue, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/supervision"): r(A.supervise_clue, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/transition"): r(A.handle_clue, A.decide_clue, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/messages"): r(A.exchange_messages, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/messages/file"): r(A.exchange_messages, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/follow-ups"): r(A.record_follow_up, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/objections"): r(A.record_objection, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/objections/{objection_id}/decision"): r(
        A.decide_objection, hidden_404=True
    ),
    ("POST", "/staff/registry/clues/{clue_id}/dossier"): r(A.export_dossier, hidden_404=True),
    ("GET", "/staff/registry/dossiers/{digest}"): r(A.export_dossier, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/notes"): r(A.handle_clue, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/progress/{request_id}"): r(A.report_progress, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/transfer-request"): r(A.request_transfer, hidden_404=True),
    ("GET", "/staff/registry/files/{attachment_id}"): r(A.download_attachment, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/redactions/text"): r(A.redact, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/redactions/file"): r(A.redact, hidden_404=True),
    ("POST", "/staff/registry/clues/{clue_id}/unmask-requests"): r(A.request_unmask, hidden_404=True),
    ("GET", "/staff/registry/redactions/{redaction_id}/file"): r(A.redact, hidden_404=True),
    ("GET", "/staff/registry/mine"): r(A.list_assigned_clues),
    ("GET", "/staff/registry/ledger.{fmt}"): r(A.export_ledger),
    ("GET", "/staff/registry/brief.xlsx"): r(A.export_ledger),
    ("GET", "/staff/registry/transfer-requests"): r(A.decide_clue),
    ("POST", "/staff/registry/transfer-requests/{request_id}"): r(A.decide_clue),
    ("GET", "/staff/registry/admin/units"): r(A.list_units),
    ("POST", "/staff/registry/admin/units"): r(A.manage_units),
    ("GET", "/staff/registry/admin/units/{unit_id}"): r(A.manage_units),
    ("POST", "/staff/registry/admin/units/{unit_id}"): r(A.manage_units),
    ("POST", "/staff/registry/admin/units/{unit_id}/aliases"): r(A.manage_units),
    ("POST", "/staff/registry/admin/units/{unit_id}/aliases/remove"): r(A.manage_units),
    ("GET", "/staff/registry/admin/routing"): r(A.list_routing_rules),
    ("POST", "/staff/registry/admin/routing"): r(A.manage_routing_rules),
    ("GET", "/staff/registry/admin/routing/{rule_id}"): r(A.manage_routing_rules),
    ("POST", "/staff/registry/admin/routing/{rule_id}"): r(A.manage_routing_rules),
    ("POST", "/staff/registry/admin/routing/{rule_id}/enabled"): r(A.manage_routing_rules),
    ("POST", "/staff/registry/admin/routing/{rule_id}/remove"): r(A.manage_routing_rules),
    ("GET", "/staff/registry/admin/taxonomy"): r(A.view_taxonomy),
    ("POST", "/staff/registry/admin/taxonomy/reload"): r(A.reload_taxonomy),
    ("GET", "/staff/registry/admin/deadlines"): r(A.list_routing_rules),
    ("POST", "/staff/registry/admin/deadlines"): r(A.manage_deadline_rules),
    ("POST", "/staff/registry/admin/deadlines/{rule_id}"): r(A.manage_deadline_rules),
    ("POST", "/staff/registry/admin/deadlines/{rule_id}/remove"): r(A.manage_deadline_rules),
    ("GET", "/staff/registry/admin/staff"): r(A.list_staff),
    ("POST", "/staff/registry/admin/staff"): r(A.manage_staff),
    ("GET", "/staff/registry/admin/staff/{staff_id}"): r(A.list_staff),
    ("POST", "/staff/registry/admin/staff/{staff_id}/disable"): r(A.manage_staff),
    ("POST", "/staff/registry/admin/staff/{staff_id}/unit"): r(A.manage_staff),
    ("POST", "/staff/registry/admin/staff/{staff_id}/tokens"): r(A.manage_staff),
    ("POST", "/staff/registry/admin/staff/{staff_id}/tokens/{token_id}/revoke"): r(A.manage_staff),
    ("POST", "/staff/registry/admin/staff/{staff_id}/password"): r(A.manage_staff_login),
    ("POST", "/staff/registry/admin/staff/{staff_id}/totp"): r(A.manage_staff_login),
    ("POST", "/staff/registry/admin/staff/{staff_id}/totp/reset"): r(A.manage_staff_login),
    ("POST", "/staff/registry/admin/staff/{staff_id}/sessions/revoke"): r(A.manage_staff_login),
}


def route_table(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = set()
    for context in routing.iter_route_contexts(app.routes):
        for method in context.methods or ():
            if method != "HEAD":
                found.add((method, context.path))
    return sorted(found, key=lambda mp: (mp[1], mp[0]))


def app_of(harness: Harness):  # type: ignore[no-untyped-def]
    return harness.client._transport.app  # noqa: SLF001 - the ASGI app behind the harness client


async def test_every_route_has_a_row(harness: Harness) -> None:
    routes = route_table(app_of(harness))
    missing = [f"{m} {p}" for m, p in routes if (m, p) not in EXPECTED]
    assert missing == [], f"classify these routes in EXPECTED: {missing}"
    stale = [f"{m} {p}" for (m, p) in EXPECTED if (m, p) not in routes]
    assert stale == [], f"rows for routes that no longer exist: {stale}"


async def submit(harness: Harness) -> str:
    response = await harness.client.post(
        "/api/v1/tips", json={"text": "看守所管教民警收了家属的钱，帮忙把人弄去保外就医，其实人根本没病。"}
    )
    assert response.status_code == 201, response.text
    return response.json()["registry_number"]


async def clue_id_for(harness: Harness, supervisor: str, number: str) -> str:
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await harness.client.get("/api/v1/clues", params=params, headers=auth(supervisor))).json()
        for item in page["items"]:
            if item["registry_number"] == number:
                return str(item["id"])
        cursor = page["next_cursor"]
        assert cursor, f"{number} not listed"


async def assigned_clue(harness: Harness, supervisor: str, investigator_id: str) -> str:
    clue_id = await clue_id_for(harness, supervisor, await submit(harness))
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": investigator_id}, headers=auth(supervisor)
    )
    assert response.status_code == 200, response.text
    return clue_id


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


def is_page(path: str) -> bool:
    return path.startswith("/staff") and not path.startswith("/staff/static")


# Where who may act depends on the object (visibility, handling), the route must load it first; these bodies
# pass validation so the answer shows the authorisation, not a 422. Every other route checks the role before
# the body (``service.http.staff_auth.authorized``), so an empty body is enough.
BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/api/v1/clues/{clue_id}/messages"): {"text": "矩阵测试"},
    ("POST", "/api/v1/clues/{clue_id}/transitions"): {"action": "accept", "reason": "矩阵测试"},
    ("POST", "/api/v1/clues/{clue_id}/follow-ups"): {
        "visited_on": "2026-01-05",
        "channel": "phone",
        "outcome": "reached",
    },
    ("POST", "/api/v1/clues/{clue_id}/objections"): {
        "channel": "phone",
        "received_on": "2026-01-05",
        "text": "矩阵测试",
    },
    ("POST", "/api/v1/objections/{objection_id}/decision"): {"decision": "review"},
}
PAGE_FORM = {"assignee_id": "no-such-staff", "reason": "矩阵测试", "action": "no-such-step"}


async def call(
    client: httpx.AsyncClient, method: str, path: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    if method in ("POST", "PUT") and is_page(path):
        return await client.request(method, url, data=PAGE_FORM, headers=headers)
    if method in ("POST", "PUT"):
        return await client.request(method, url, json=BODIES.get((method, path), {}), headers=headers)
    return await client.request(method, url, headers=headers)


def judge(rule: Rule, role: Role | None, method: str, path: str, response: httpx.Response) -> str | None:
    """None if the answer fits the rule, else a description of the mismatch."""
    status = response.status_code
    where = f"{method} {path} as {role.value if role else 'anonymous'}: {status}"
    if status >= 500:
        return f"{where} (server error)"
    login_redirect = status == 303 and response.headers.get("location", "").startswith("/staff/login")
    if (method, path) == ("POST", "/staff/logout") and role is not None:
        login_redirect = False  # logging out ends on the login page
    refused = status in (401, 403) or login_redirect
    if rule.actions == PUBLIC:
        # Public forms answer 403 to a missing CSRF token (bound to a cookie of the form page); that is not
        # an authorisation refusal. Public routes must never ask for an account.
        return f"{where}, a public route asked for an account" if status == 401 or login_redirect else None
    if rule.allows(role):
        return f"{where}, expected allowed" if refused else None
    if role is None:
        return None if status == 401 or login_redirect else f"{where}, expected 401 or the login page"
    if refused or (rule.hidden_404 and status == 404):
        return None
    return f"{where}, expected denied"


async def test_role_endpoint_matrix(harness: Harness) -> None:
    app = app_of(harness)
    unit = await harness.add_unit(unique("纪委监委"))
    supervisor_id, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], unit)
    investigator_id, _ = await harness.add_staff(unique("核查"), ["investigator"], unit)
    victim_id, _ = await harness.add_staff(unique("靶子"), ["operator"], unit)  # accounts admins act on

    # One web identity per role: an API token and a logged-in session (cookie + CSRF token).
    staff = {role: await make_web_staff(harness, [role.value], unit) for role in Role}
    clue_id = await assigned_clue(harness, supervisor, staff[Role.investigator].id)
    values = {
        "clue_id": clue_id,
        "staff_id": victim_id,
        "token_id": "no-such-token",
        "rule_id": "no-such-rule",
        "unit_id": "no-such-unit",
        "alias": "no-such-alias",
        "request_id": "no-such-request",
        "transfer_id": "no-such-transfer",
        "attachment_id": "no-such-attachment",
        "objection_id": "no-such-objection",
        "redaction_id": "no-such-redaction",
        "mail_id": "no-such-mail",
        "digest": "0" * 64,
        "fmt": "csv",
        "name": "web.css",
    }
    routes = [(m, p) for m, p in route_table(app) if (m, p) in EXPECTED]
    # Logging out and ending sessions would cut the matrix short: they run last.
    routes.sort(key=lambda mp: (mp[1].endswith("/logout"), mp[1].endswith("/sessions/revoke")))
    problems: list[str] = []
    anonymous = httpx.AsyncClient(transport=harness.client._transport, base_url="https://tipline.test")  # noqa: SLF001
    async with anonymous:
        for method, path in routes:
            url = fill(path, values)
            headers = {"Accept": "text/html"} if is_page(path) else {}
            problem = judge(
                EXPECTED[(method, path)],
                None,
                method,
                path,
                await call(anonymous, method, path, url, headers),
            )
            if problem:
                problems.append(problem)
    for role in Role:
        web = staff[role]
        async with log_in(harness, web) as browser:
            home = await browser.get("/staff")
            assert home.status_code == 200
            csrf = _csrf_of_session(harness, browser)
            for method, path in routes:
                url = fill(path, values)
                if is_page(path):
                    response = await call(
                        browser, method, path, url, {"X-CSRF-Token": csrf, "Accept": "text/html"}
                    )
                else:
                    response = await call(harness.client, method, path, url, auth(web.token))
                problem = judge(EXPECTED[(method, path)], role, method, path, response)
                if problem:
                    problems.append(problem)
    assert problems == [], "\n".join(problems)
    assert supervisor_id and investigator_id


def _csrf_of_session(harness: Harness, browser: httpx.AsyncClient) -> str:
    from service.auth import sessions as session_service
    from service.staff_site.session import session_cookie_name

    token = browser.cookies.get(session_cookie_name(harness.runtime.settings))
    assert token
    return session_service.csrf_token_for(harness.runtime, token)


# --- Object level: investigator A's clue is invisible to investigator B ---------------------------------


async def test_investigator_cannot_read_modify_list_or_count_anothers_clue(harness: Harness) -> None:
    unit = await harness.add_unit(unique("纪委监委"))
    _, supervisor = await harness.add_staff(unique("督办"), ["supervisor"], unit)
    a_id, a = await harness.add_staff(unique("核查甲"), ["investigator"], unit)
    _, b = await harness.add_staff(unique("核查乙"), ["investigator"], unit)
    clue_id = await assigned_clue(harness, supervisor, a_id)
    client = harness.client

    # A sees it everywhere.
    assert (await client.get(f"/api/v1/clues/{clue_id}", headers=auth(a))).status_code == 200
    assert clue_id in [
        c["id"] for c in (await client.get("/api/v1/me/clues", headers=auth(a))).json()["items"]
    ]

    # B: every read and every change on it answers exactly as for a clue that does not exist.
    reads = ["", "/history", "/actions", "/additions", "/messages", "/attachments", "/classification"]
    for suffix in reads:
        mine = await client.get(f"/api/v1/clues/{clue_id}{suffix}", headers=auth(b))
        ghost = await client.get(f"/api/v1/clues/no-such-clue{suffix}", headers=auth(b))
        assert mine.status_code in (403, 404), (suffix, mine.status_code)
        assert (mine.status_code, mine.json()) == (ghost.status_code, ghost.json()), suffix
    changes = [
        ("/messages", {"text": "你好"}),
        ("/transitions", {"to": "accepted", "reason": "试图接手"}),
        ("/classification", {"categories": ["bribery"], "reason": "改分类"}),
    ]
    for suffix, body in changes:
        mine = await client.post(f"/api/v1/clues/{clue_id}{suffix}", json=body, headers=auth(b))
        assert mine.status_code in (403, 404, 422), (suffix, mine.status_code)
        assert mine.status_code != 422 or "clue" not in mine.text.lower(), suffix
    # Not listed, not counted: B's list is unchanged and B may see no statistics or search.
    listed = (await client.get("/api/v1/me/clues", headers=auth(b), params={"limit": 200})).json()
    assert clue_id not in [c["id"] for c in listed["items"]]
    for path in (
        "/api/v1/clues",
        "/api/v1/stats/overview",
        "/api/v1/stats/trends",
        "/api/v1/stats/overdue",
        "/api/v1/brief",
        "/api/v1/clue-search",
        "/api/v1/ledger.csv",
        "/api/v1/supervision",
    ):
        assert (await client.get(path, headers=auth(b))).status_code == 403, path
    # Nothing changed: A still reads it in the state it was in.
    detail = (await client.get(f"/api/v1/clues/{clue_id}", headers=auth(a))).json()
    assert detail["assignee_id"] == a_id
    messages = (await client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(a))).json()
    assert messages == []


# --- Credentials: expiry and revocation ------------------------------------------------------------------


async def test_expired_and_revoked_tokens_and_sessions_are_refused(harness: Harness) -> None:
    _, admin = await harness.add_staff(unique("管理员"), ["admin"])
    staff_id, token = await harness.add_staff(unique("核查"), ["investigator"])
    assert (await harness.client.get("/api/v1/me", headers=auth(token))).status_code == 200
    async with harness.runtime.session_factory() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.staff_id == staff_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert (await harness.client.get("/api/v1/me", headers=auth(token))).status_code == 401

    issued = (await harness.client.post(f"/api/v1/staff/{staff_id}/tokens", headers=auth(admin))).json()
    assert (await harness.client.get("/api/v1/me", headers=auth(issued["token"]))).status_code == 200
    revoke = await harness.client.post(f"/api/v1/tokens/{issued['id']}/revoke", headers=auth(admin))
    assert revoke.status_code == 204
    assert (await harness.client.get("/api/v1/me", headers=auth(issued["token"]))).status_code == 401

    web = await make_web_staff(harness, ["operator"])
    async with log_in(harness, web) as browser:
        assert (await browser.get("/staff/hotline/calls/new")).status_code == 200
        ended = await harness.client.post(f"/api/v1/staff/{web.id}/sessions/revoke", headers=auth(admin))
        assert ended.status_code == 200
        after = await browser.get("/staff/hotline/calls/new")
        assert after.status_code == 303 and after.headers["location"].startswith("/staff/login")
