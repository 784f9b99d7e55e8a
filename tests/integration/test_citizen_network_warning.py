"""A reporter on the network of an organisation under supervision is warned before sending, and that address
is checked in memory only: never stored, logged or counted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from service.intake.networks import on_supervised_network
from service.platform.settings import WebSettings
from tests.helpers import files_under, find_canaries, pg_dump
from tests.helpers.app import running_app

INSIDE = "10.77.123.45"  # in the configured police intranet
OUTSIDE = "198.51.100.23"


def test_address_matching() -> None:
    nets = WebSettings(supervised_networks=["10.0.0.0/8", "2001:db8:100::/48"]).supervised_networks
    assert on_supervised_network("10.1.2.3", nets)
    assert on_supervised_network("::ffff:10.1.2.3", nets)
    assert on_supervised_network("2001:db8:100::7", nets)
    assert not on_supervised_network("11.0.0.1", nets)
    assert not on_supervised_network("2001:db8:200::7", nets)
    assert not on_supervised_network("unknown", nets) and not on_supervised_network("", nets)
    assert not on_supervised_network("10.1.2.3", [])


def test_a_bad_range_stops_the_service_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.platform.settings import SettingsError, load_settings

    monkeypatch.setenv("TIPLINE_WEB_SUPERVISED_NETWORKS", '["10.0.0.0/33"]')
    with pytest.raises(SettingsError, match="TIPLINE_WEB_SUPERVISED_NETWORKS"):
        load_settings()


async def test_warned_on_the_supervised_network_and_the_address_is_kept_nowhere(
    backend: str, tmp_path, fresh_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    web = WebSettings(supervised_networks=["10.64.0.0/10", "fd00:99::/32"], trusted_proxy_hops=1)
    data_dir = tmp_path / "data"
    async with running_app(data_dir, fresh_database_url, web=web) as harness:
        client = harness.client

        async def form(address: str) -> str:
            response = await client.get("/report", headers={"X-Forwarded-For": address})
            assert response.status_code == 200
            return response.text

        inside = await form(INSIDE)
        assert 'id="network-warning"' in inside
        warning = inside.split('id="network-warning"', 1)[1]
        assert warning.index("请注意") < warning.index("Warning")  # Chinese first
        assert "移动数据" in warning and "mobile data" in warning
        assert 'id="network-warning"' not in await form(OUTSIDE)
        assert 'id="network-warning"' in await form("fd00:99::1")
        # A report sent anyway (the JSON API, from the same address) is accepted as any other.
        sent = await client.post(
            "/api/v1/tips", json={"text": "民警收红包，案子压着不立。"}, headers={"X-Forwarded-For": INSIDE}
        )
        assert sent.status_code == 201
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        counted = metrics.text

    if backend == "sqlite":
        database = Path(fresh_database_url.split(":///", 1)[1])
        stored = b"".join(p.read_bytes() for p in files_under(data_dir, database))
    else:
        stored = pg_dump(fresh_database_url)
    logged = "\n".join(record.getMessage() for record in caplog.records).encode()
    assert stored and logged
    canaries = [INSIDE, "fd00:99::1"]
    assert find_canaries(stored, canaries) == []
    assert find_canaries(logged, canaries) == []
    assert INSIDE not in counted and "supervised" not in counted.lower() and "network_warning" not in counted
