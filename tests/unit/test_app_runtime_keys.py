"""The staff and worker roles start without any case private key (compartments); a one-off command that
opens case-key envelopes refuses clearly without one, and a case-key envelope answers ``CaseKeyAbsent``."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.app.runtime import build_runtime, key_paths, load_keys, require_case_key, require_sealing_keys
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import (
    CaseKeyAbsent,
    KeyFileError,
    generate_key_pair,
    write_key_pair,
    write_public_key,
)
from service.platform.errors import DomainError
from service.platform.settings import Settings


@pytest.mark.parametrize("suite", ["international", "national"])
def test_staff_and_worker_start_without_the_case_private_key(tmp_path: Path, suite: str) -> None:
    settings = Settings(data_dir=tmp_path, crypto_suite=suite)  # type: ignore[arg-type]
    paths = key_paths(settings)
    case, identity = generate_key_pair("case", suite), generate_key_pair("identity", suite)
    write_public_key(paths["case_public"], case.public)
    write_public_key(paths["identity_public"], identity.public)
    sealed = case.public.seal("旧线索".encode(), "clues/x/content")

    for roles in ({"staff"}, {"worker"}, {"staff", "worker", "intake", "mail"}):
        keys = load_keys(settings, frozenset(roles))
        assert not keys.can_open("case")
        with pytest.raises(CaseKeyAbsent) as refused:
            keys.open(sealed, "clues/x/content")
        assert isinstance(refused.value, EnvelopeError) and isinstance(refused.value, DomainError)
        assert refused.value.status_code == 503 and "tipline compartments adopt" in refused.value.message_en
        assert "分隔加密之前" in refused.value.message
    with pytest.raises(KeyFileError, match="custodial host"):
        require_case_key(settings, load_keys(settings, frozenset({"staff"})))
    # Another key's envelope is an ordinary envelope error, not the adoption hint.
    with pytest.raises(EnvelopeError) as other:
        load_keys(settings, frozenset({"staff"})).open(identity.public.seal(b"x", "b"), "b")
    assert not isinstance(other.value, CaseKeyAbsent)

    # Where a case private key is mounted (before adoption), it is loaded and opens the old envelope.
    write_key_pair(paths["case_private"], case)
    keys = require_case_key(settings, load_keys(settings, frozenset({"staff"})))
    assert keys.open(sealed, "clues/x/content") == "旧线索".encode()
    assert not load_keys(settings, frozenset({"intake"})).can_open("case")


def test_production_refuses_to_start_without_the_escrow_public_key(tmp_path: Path) -> None:
    """A clue sealed with no escrow wrap cannot be recovered when its readers leave: no production process
    starts without the escrow public key."""
    settings = Settings(
        data_dir=tmp_path,
        environment="production",
        lookup_secret="0" * 64,  # type: ignore[arg-type]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tipline.db'}",
    )
    paths = key_paths(settings)
    for name in ("case", "identity"):
        write_public_key(paths[f"{name}_public"], generate_key_pair(name, "international").public)
    with pytest.raises(KeyFileError) as refused:
        build_runtime(settings, frozenset({"intake"}))
    message = str(refused.value)
    assert message.index("生产环境不能启动") < message.index("production does not start")
    assert "escrow.public.json" in message
    for roles in ({"intake"}, {"mail"}, {"staff"}, {"worker"}):
        with pytest.raises(KeyFileError, match="escrow.public.json"):
            require_sealing_keys(settings, load_keys(settings, frozenset(roles)))

    write_public_key(paths["escrow_public"], generate_key_pair("escrow", "international").public)
    for roles in ({"intake"}, {"mail"}, {"staff"}, {"worker"}):
        assert require_sealing_keys(settings, load_keys(settings, frozenset(roles))).escrow_public is not None
    # A development machine without it is not refused (it makes its own on first start).
    development = Settings(data_dir=tmp_path / "dev")
    for name in ("case", "identity"):
        write_public_key(
            key_paths(development)[f"{name}_public"], generate_key_pair(name, "international").public
        )
    assert (
        require_sealing_keys(development, load_keys(development, frozenset({"intake"}))).escrow_public is None
    )
