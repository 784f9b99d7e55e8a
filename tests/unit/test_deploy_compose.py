"""deploy/compose.yaml: valid against the compose-spec schema, and each role holds only the keys it needs."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from service.app.runtime import key_paths
from service.platform.settings import Settings
from tests.helpers.tools import PIP, require_module

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
SERVER_ROLES = ("intake", "mail", "staff", "worker")


def _schema() -> dict:
    require_module("check_jsonschema", PIP + "; check-jsonschema bundles the compose-spec schema")
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def test_compose_file_matches_the_compose_spec_schema() -> None:
    validator = jsonschema.Draft7Validator(_schema())
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []


def _keys(service: str) -> set[str]:
    return {
        (s if isinstance(s, str) else s["source"]) for s in COMPOSE["services"][service].get("secrets", [])
    }


def test_every_part_is_there() -> None:
    assert set(COMPOSE["services"]) >= {"db", "migrate", *SERVER_ROLES, "mailcatcher"}


def _key_files(service: str) -> set[str]:
    return {
        s["target"].removeprefix("/run/tipline-keys/")
        for s in COMPOSE["services"][service].get("secrets", [])
        if isinstance(s, dict) and s["target"].startswith("/run/tipline-keys/")
    }


def test_each_role_gets_only_the_keys_it_needs() -> None:
    # Every role seals: a new clue's content key to the escrow key (custodians recover a unit's clues with
    # it), a real-name reporter's contact fields to the contact key; production refuses to start without
    # the escrow key (app.runtime.require_sealing_keys). The file names are the ones the runtime reads.
    paths = key_paths(Settings())
    public = {paths[f"{name}_public"].name for name in ("case", "identity", "escrow", "contact")}
    for role in SERVER_ROLES:
        assert _key_files(role) == public, role
        assert {"case_public", "identity_public", "escrow_public", "contact_public"} <= _keys(role), role
    # No private key anywhere in the file: compartments need none on a server (the case key stays on the
    # custodial host that adopts older clues; the identity key exists only as custodians' shares).
    assert not any("private" in name for name in COMPOSE["secrets"])
    assert ".private" not in (ROOT / "deploy" / "compose.yaml").read_text()


def test_secrets_come_from_files_never_from_inline_environment() -> None:
    for name, secret in COMPOSE["secrets"].items():
        assert set(secret) == {"file"}, name
    for role in SERVER_ROLES:
        service = COMPOSE["services"][role]
        env = service["environment"]
        assert env["TIPLINE_DATABASE_URL_FILE"].startswith("/run/secrets/")
        assert "TIPLINE_DATABASE_URL" not in env and "TIPLINE_LOOKUP_SECRET" not in env
        assert service["read_only"] is True and service["user"] == "10001:10001"
        assert any(t.startswith("/tmp") for t in service["tmpfs"])  # noqa: S108
        assert service["shm_size"] == "256m"  # the attachment scratch (/dev/shm) holds a recording or a video
        assert service["cap_drop"] == ["ALL"]


def test_staff_is_not_published_to_the_public_and_the_database_network_is_internal() -> None:
    assert COMPOSE["networks"]["backend"]["internal"] is True
    assert "public" not in COMPOSE["services"]["staff"]["networks"]
    assert all(p.startswith("127.0.0.1:") for p in COMPOSE["services"]["staff"]["ports"])
    assert COMPOSE["services"]["db"]["networks"] == ["backend"]
