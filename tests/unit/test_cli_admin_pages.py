"""No admin task needs the command line: every `tipline` command is either an admin task with its page on
the staff site (the page's route is checked to exist, with the method the form uses), or listed here as the
operator's with the reason. A new command that is in neither list fails this test, so it cannot silently
lack a page. The pages' own behaviour is tested in tests/integration/test_staff_site_admin_*.py."""

from __future__ import annotations

import argparse

from fastapi.routing import APIRoute

from service.cli.main import _parser
from service.staff_site import admin_pages

ADMIN = "/staff/registry/admin"

# command -> the admin pages doing the same: (method, route path)
PAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "staff add": (("POST", f"{ADMIN}/staff"),),
    "staff disable": (("POST", f"{ADMIN}/staff/{{staff_id}}/disable"),),
    "staff token": (("POST", f"{ADMIN}/staff/{{staff_id}}/tokens"),),
    "staff revoke-token": (("POST", f"{ADMIN}/staff/{{staff_id}}/tokens/{{token_id}}/revoke"),),
    "staff list": (("GET", f"{ADMIN}/staff"), ("GET", f"{ADMIN}/staff/{{staff_id}}")),
    "staff set-password": (("POST", f"{ADMIN}/staff/{{staff_id}}/password"),),
    "staff enrol-totp": (("POST", f"{ADMIN}/staff/{{staff_id}}/totp"),),
    "staff reset-totp": (("POST", f"{ADMIN}/staff/{{staff_id}}/totp/reset"),),
    "staff move": (("POST", f"{ADMIN}/staff/{{staff_id}}/unit"),),
    "unit add": (("POST", f"{ADMIN}/units"),),
    "unit alias": (
        ("POST", f"{ADMIN}/units/{{unit_id}}/aliases"),
        ("POST", f"{ADMIN}/units/{{unit_id}}/aliases/remove"),
    ),
    "unit list": (("GET", f"{ADMIN}/units"), ("GET", f"{ADMIN}/units/{{unit_id}}")),
    "routing add": (("POST", f"{ADMIN}/routing"),),
    "routing disable": (("POST", f"{ADMIN}/routing/{{rule_id}}/enabled"),),
    "routing list": (("GET", f"{ADMIN}/routing"),),
    "deadlines add": (("POST", f"{ADMIN}/deadlines"),),
    "deadlines remove": (("POST", f"{ADMIN}/deadlines/{{rule_id}}/remove"),),
    "deadlines list": (("GET", f"{ADMIN}/deadlines"),),
    "taxonomy reload": (("POST", f"{ADMIN}/taxonomy/reload"),),
}

_PROCESS = "runs a server process on the host"
_DATABASE = "schema and database roles: the operator's, before and beside the running service"
_KEYS = "private key material stays on the host and with the custodians, never in a web request"
_CUSTODY = (
    "the two-person identity release: custodians bring their key shares to the host; the shares never "
    "pass through the web server"
)
OPERATOR_ONLY: dict[str, str] = {
    "serve": _PROCESS,
    "mail-receiver": _PROCESS,
    "mail-outbound-key": _KEYS,
    "db upgrade": _DATABASE,
    "db current": _DATABASE,
    "db roles": _DATABASE,
    "db downgrade": _DATABASE,
    "audit verify": "checks the hash chains independently of the service it audits",
    "audit checkpoint": "signs the chain heads with the checkpoint key on the host",
    "keys init": _KEYS,
    "keys rotate": _KEYS,
    "keys export-public": _KEYS,
    "keys reencrypt": _KEYS,
    "custody request": _CUSTODY,
    "custody approve": _CUSTODY,
    "custody refuse": _CUSTODY,
    "custody release": _CUSTODY,
    "custody contact": _CUSTODY,
    "custody list": _CUSTODY,
    "custody recover-unit": "escrow recovery of a unit's clues: custodians bring key shares to the host",
    "unit rotate-key": (
        "maintenance with a member's own password on the host (a large unit at once; the members' "
        "requests do it a chunk each anyway)"
    ),
    "custody unmask": "an unmask request applied with custodians' shares of the identity key, on the host",
    "attachments reseal-names": "maintenance with the case private key: re-seals old file names",
    "compartments adopt": (
        "a one-off conversion with the case private key on the host, which no web request holds; resumable "
        "chunks, run by the operator"
    ),
    "taxonomy validate": "checks a taxonomy file on the host before it is installed",
    "dev seed": "development data only; refused in production",
    "dossier export": "casework, not administration: a client of the API with a staff token",
    "dossier verify": "checks files a receiving organ was given, offline",
    "classify": "an evaluation tool over JSON Lines on standard input",
}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its subcommands here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                nested = _commands(sub, (*prefix, name))
                found.extend(nested or [" ".join((*prefix, name))])
    return found


def test_every_cli_command_has_an_admin_page_or_is_the_operators() -> None:
    commands = _commands(_parser())
    assert "unit alias" in commands and "deadlines remove" in commands  # the walk finds nested commands
    unaccounted = [c for c in commands if c not in PAGES and c not in OPERATOR_ONLY]
    assert not unaccounted, f"CLI commands with neither an admin page nor a reason: {unaccounted}"
    assert not set(PAGES) & set(OPERATOR_ONLY)
    stale = (set(PAGES) | set(OPERATOR_ONLY)) - set(commands)
    assert not stale, f"listed commands the CLI no longer has: {stale}"


def test_the_pages_named_exist() -> None:
    routes = {
        (method, route.path)
        for route in admin_pages.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    for command, pages in PAGES.items():
        for page in pages:
            assert page in routes, (command, page)
