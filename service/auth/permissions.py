"""Who may do what: the one role x action table. Routes, pages and docs/roles.md all follow it."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from service.platform.errors import Forbidden


class Role(StrEnum):
    operator = "operator"  # takes hotline calls, registers letters and visits
    investigator = "investigator"  # handles clues assigned to them
    supervisor = "supervisor"  # registers staff-sourced clues, assigns, supervises, exports
    custodian = "custodian"  # takes part in identity releases
    admin = "admin"  # accounts, units, taxonomy, routing; reads no clue content


class Action(StrEnum):
    read_own_profile = "read_own_profile"
    list_assigned_clues = "list_assigned_clues"
    read_assigned_clue = "read_assigned_clue"
    list_all_clues = "list_all_clues"
    read_any_clue = "read_any_clue"
    assign_clue = "assign_clue"
    list_units = "list_units"
    manage_units = "manage_units"
    list_staff = "list_staff"
    manage_staff = "manage_staff"
    manage_staff_login = "manage_staff_login"
    register_call = "register_call"
    add_to_call_clue = "add_to_call_clue"
    register_letter_visit = "register_letter_visit"
    register_staff_source = "register_staff_source"
    exchange_messages = "exchange_messages"
    decide_clue = "decide_clue"
    handle_clue = "handle_clue"
    request_transfer = "request_transfer"
    supervise_clue = "supervise_clue"
    report_progress = "report_progress"
    record_consultation = "record_consultation"
    search_clues = "search_clues"
    export_ledger = "export_ledger"
    view_statistics = "view_statistics"
    list_routing_rules = "list_routing_rules"
    manage_routing_rules = "manage_routing_rules"
    manage_deadline_rules = "manage_deadline_rules"
    list_mail_quarantine = "list_mail_quarantine"
    read_mail_quarantine = "read_mail_quarantine"
    set_own_notifications = "set_own_notifications"
    list_attachments = "list_attachments"
    download_attachment = "download_attachment"
    read_classification = "read_classification"
    correct_classification = "correct_classification"
    view_taxonomy = "view_taxonomy"
    reload_taxonomy = "reload_taxonomy"
    manage_legal_hold = "manage_legal_hold"
    export_dossier = "export_dossier"
    record_dossier_feedback = "record_dossier_feedback"
    record_follow_up = "record_follow_up"
    record_objection = "record_objection"
    decide_objection = "decide_objection"
    redact = "redact"
    request_unmask = "request_unmask"


_ALL = frozenset(Role)

PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.read_own_profile: _ALL,
    Action.list_assigned_clues: frozenset({Role.investigator}),
    Action.read_assigned_clue: frozenset({Role.investigator}),
    Action.list_all_clues: frozenset({Role.supervisor}),
    Action.read_any_clue: frozenset({Role.supervisor}),
    Action.assign_clue: frozenset({Role.supervisor}),
    Action.list_units: frozenset({Role.supervisor, Role.admin}),
    Action.manage_units: frozenset({Role.admin}),
    Action.list_staff: frozenset({Role.supervisor, Role.admin}),
    Action.manage_staff: frozenset({Role.admin}),
    Action.manage_staff_login: frozenset({Role.admin}),
    Action.register_call: frozenset({Role.operator}),
    Action.add_to_call_clue: frozenset({Role.operator}),
    Action.register_letter_visit: frozenset({Role.operator}),
    Action.register_staff_source: frozenset({Role.supervisor}),
    Action.exchange_messages: frozenset({Role.investigator, Role.supervisor}),
    Action.decide_clue: frozenset({Role.supervisor}),
    Action.handle_clue: frozenset({Role.investigator, Role.supervisor}),
    Action.request_transfer: frozenset({Role.investigator, Role.supervisor}),
    Action.supervise_clue: frozenset({Role.supervisor}),
    Action.report_progress: frozenset({Role.investigator, Role.supervisor}),
    Action.record_consultation: frozenset({Role.supervisor}),
    Action.search_clues: frozenset({Role.supervisor}),
    Action.export_ledger: frozenset({Role.supervisor}),
    Action.view_statistics: frozenset({Role.supervisor}),
    Action.list_routing_rules: frozenset({Role.supervisor, Role.admin}),
    Action.manage_routing_rules: frozenset({Role.admin}),
    Action.manage_deadline_rules: frozenset({Role.admin}),
    Action.list_mail_quarantine: frozenset({Role.supervisor}),
    Action.read_mail_quarantine: frozenset({Role.supervisor}),
    Action.set_own_notifications: _ALL,
    Action.list_attachments: frozenset({Role.investigator, Role.supervisor}),
    Action.download_attachment: frozenset({Role.investigator, Role.supervisor}),
    Action.read_classification: frozenset({Role.investigator, Role.supervisor}),
    Action.correct_classification: frozenset({Role.investigator, Role.supervisor}),
    Action.view_taxonomy: frozenset({Role.supervisor, Role.admin}),
    Action.reload_taxonomy: frozenset({Role.admin}),
    Action.manage_legal_hold: frozenset({Role.supervisor}),
    Action.export_dossier: frozenset({Role.investigator, Role.supervisor}),
    Action.record_dossier_feedback: frozenset({Role.supervisor}),
    Action.record_follow_up: frozenset({Role.investigator, Role.supervisor}),
    Action.record_objection: frozenset({Role.investigator, Role.supervisor}),
    Action.decide_objection: frozenset({Role.supervisor}),
    Action.redact: frozenset({Role.investigator, Role.supervisor}),
    Action.request_unmask: frozenset({Role.supervisor}),
}

DESCRIPTIONS: dict[Action, str] = {
    Action.read_own_profile: "See one's own account (`GET /api/v1/me`)",
    Action.list_assigned_clues: "List the clues assigned to oneself (`GET /api/v1/me/clues`)",
    Action.read_assigned_clue: "Read a clue assigned to oneself, content included (`GET /api/v1/clues/{id}`)",
    Action.list_all_clues: "List and filter every clue (`GET /api/v1/clues`)",
    Action.read_any_clue: "Read any clue, content included (`GET /api/v1/clues/{id}`)",
    Action.assign_clue: (
        "Assign a clue to an investigator; recuse a person from it "
        "(`POST /api/v1/clues/{id}/assign`, `/recusals`)"
    ),
    Action.list_units: "List units (`GET /api/v1/units`)",
    Action.manage_units: (
        "Create, rename and move units, add and remove their aliases (`/api/v1/units…`, `tipline unit`)"
    ),
    Action.list_staff: "List staff accounts (`GET /api/v1/staff`)",
    Action.manage_staff: "Create, disable staff, issue and revoke tokens (`POST /api/v1/staff…`, `tipline staff`)",
    Action.manage_staff_login: (
        "Set a staff password, enrol or reset TOTP, end web sessions (`/api/v1/staff/{id}/password`, `…/totp`)"
    ),
    Action.register_call: "Register a hotline call as a clue (`POST /api/v1/hotline/calls`, `/staff/hotline`)",
    Action.add_to_call_clue: (
        "Add to a clue when the caller phones again with the code — add-only (`POST /api/v1/hotline/additions`)"
    ),
    Action.register_letter_visit: "Register a letter or a visit (`POST /api/v1/letters`, `/api/v1/visits`)",
    Action.register_staff_source: (
        "Register a superior assignment, self-inspection or voluntary confession (`POST /api/v1/staff-sources`)"
    ),
    Action.exchange_messages: (
        "Read and send messages and cleaned files to the reporter of a visible clue "
        "(`GET/POST /api/v1/clues/{id}/messages`, `POST …/messages/file`)"
    ),
    Action.decide_clue: (
        "Triage, refer out of scope, transfer, reopen, archive, reassign with a reason; decide transfer "
        "requests (`POST /api/v1/clues/{id}/transitions`, `/reassign`, `/api/v1/transfer-requests…`)"
    ),
    Action.request_transfer: (
        "Ask for a clue one handles to be transferred to another unit "
        "(`POST /api/v1/clues/{id}/transfer-requests`)"
    ),
    Action.handle_clue: (
        "Accept, dispose (with approver), send on, conclude a clue one handles — supervisors any clue "
        "(`POST /api/v1/clues/{id}/transitions`)"
    ),
    Action.supervise_clue: (
        "Mark a key clue, name the supervising leader (包案), request progress, issue reminders "
        "(`/api/v1/clues/{id}/supervision`, `/progress-requests`, `/api/v1/reminders`)"
    ),
    Action.report_progress: "Answer a progress request on a visible clue (`POST /api/v1/progress-requests/{id}/report`)",
    Action.record_consultation: "Record a consultation on a difficult clue (`POST /api/v1/clues/{id}/consultations`)",
    Action.search_clues: "Search clues by accused person, unit, number, category, date (`GET /api/v1/clue-search`, `/api/v1/clues/{id}/related`)",
    Action.export_ledger: (
        "Export the ledger and the meeting brief as xlsx/CSV, audited (`GET /api/v1/ledger.xlsx|.csv`, "
        "`/api/v1/brief.xlsx`)"
    ),
    Action.view_statistics: (
        "Statistics, overdue and at-risk lists, the meeting brief (`GET /api/v1/stats…`, `/api/v1/brief`)"
    ),
    Action.list_routing_rules: "List routing and deadline rules (`GET /api/v1/routing-rules`, `/deadline-rules`)",
    Action.manage_routing_rules: (
        "Create, change, disable, remove routing rules (`/api/v1/routing-rules`, `tipline routing`)"
    ),
    Action.manage_deadline_rules: (
        "Create, change the limit of, remove deadline rules (`/api/v1/deadline-rules`, `tipline deadlines`)"
    ),
    Action.list_mail_quarantine: (
        "List quarantined (unreadable) and filtered mail without content, with counts (`GET /api/v1/mail/quarantine`)"
    ),
    Action.read_mail_quarantine: (
        "Fetch a quarantined raw message, or a filtered one within its retention, still sealed to the "
        "identity key, audited "
        "(`POST /api/v1/mail/quarantine/{id}/read`)"
    ),
    Action.set_own_notifications: (
        "Choose one's notification address and immediate/daily/off (`GET/PUT /api/v1/me/notifications`)"
    ),
    Action.list_attachments: (
        "List the files of a visible clue and its reporter replies, without content "
        "(`GET /api/v1/clues/{id}/attachments`)"
    ),
    Action.download_attachment: (
        "Download a visible clue's file, metadata removed, verified while streamed, audited "
        "(`GET /api/v1/attachments/{id}`)"
    ),
    Action.read_classification: (
        "Read a visible clue's classification, its evidence and the corrections with reasons, audited "
        "(`GET /api/v1/clues/{id}/classification`)"
    ),
    Action.correct_classification: (
        "Correct a visible clue's categories with a reason, audited (`POST /api/v1/clues/{id}/classification`)"
    ),
    Action.view_taxonomy: "See the taxonomy in force: categories, tiers, term counts, version (`GET /api/v1/taxonomy`)",
    Action.reload_taxonomy: (
        "Reload the configured taxonomy file in this process; a bad file is refused (`POST /api/v1/taxonomy/reload`)"
    ),
    Action.manage_legal_hold: (
        "See, put on or lift a legal hold that stops retention purging a clue, audited "
        "(`GET/PUT /api/v1/clues/{id}/legal-hold`)"
    ),
    Action.export_dossier: (
        "Export a visible transferred or sent-on clue as a signed dossier (PDF, cleaned files, manifest), "
        "no identity unless a custody release names it, audited (`POST /api/v1/clues/{id}/dossier`, "
        "`tipline dossier export`; with identity: `tipline custody release … --out`, the exporter's token)"
    ),
    Action.record_dossier_feedback: (
        "Record and read a receiving organ's feedback against a dossier's hash, audited "
        "(`POST/GET /api/v1/dossiers/{hash}/feedback`)"
    ),
    Action.record_follow_up: (
        "Record and list follow-up calls or visits (回访) to the reporter of a visible concluded clue, "
        "audited (`GET/POST /api/v1/clues/{id}/follow-ups`)"
    ),
    Action.record_objection: (
        "Record a real-name reporter's objection (异议) made by phone, letter or visit, and list a visible "
        "clue's objections, audited (`GET/POST /api/v1/clues/{id}/objections`)"
    ),
    Action.decide_objection: (
        "Accept an objection for review, reject it with a reason, or record the review's result, audited "
        "(`POST /api/v1/objections/{id}/decision`)"
    ),
    Action.redact: (
        "Redact a visible clue's report, messages, additions, accused details (spans) and images or PDF pages "
        "(regions) as a new version with a reason; list versions; the dossier shows the latest "
        "(`/api/v1/clues/{id}/redactions…`)"
    ),
    Action.request_unmask: (
        "Ask to unmask one automatically masked span with a reason; custodians' shares apply it "
        "(`POST /api/v1/clues/{id}/unmask-requests`, `tipline redaction unmask`)"
    ),
}


def is_allowed(roles: Iterable[str], action: Action) -> bool:
    return not PERMISSIONS[action].isdisjoint(roles)


def require(roles: Iterable[str], action: Action) -> None:
    if not is_allowed(roles, action):
        raise Forbidden("您的角色无权进行此操作", message_en=f"your role may not {action.value}")


def roles_markdown() -> str:
    """The table as it stands in docs/roles.md (a test keeps the two identical)."""
    roles = list(Role)
    lines = [
        "| action | " + " | ".join(r.value for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for action in Action:
        cells = ["✓" if role in PERMISSIONS[action] else "" for role in roles]
        lines.append(f"| {DESCRIPTIONS[action]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
