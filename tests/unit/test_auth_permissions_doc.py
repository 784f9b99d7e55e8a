"""docs/roles.md and the code enforce the same table."""

from __future__ import annotations

from pathlib import Path

from service.auth.permissions import PERMISSIONS, Action, Role, is_allowed, require, roles_markdown
from service.platform.errors import Forbidden

ROLES_DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"


def test_docs_match_the_code() -> None:
    assert roles_markdown() in ROLES_DOC.read_text(encoding="utf-8"), (
        "docs/roles.md is stale: regenerate it from service.auth.permissions.roles_markdown()"
    )


def test_every_action_has_roles_and_admin_reads_no_content() -> None:
    assert set(PERMISSIONS) == set(Action)
    assert not is_allowed({Role.admin}, Action.read_any_clue)
    assert not is_allowed({Role.admin}, Action.read_assigned_clue)
    assert not is_allowed({Role.operator}, Action.read_any_clue)


def test_require_raises_forbidden() -> None:
    require({"supervisor"}, Action.assign_clue)
    try:
        require({"investigator"}, Action.assign_clue)
    except Forbidden as exc:
        assert exc.status_code == 403
    else:
        raise AssertionError("investigators may not assign")
