"""Which address keys the in-memory throttle behind trusted reverse proxies."""

from __future__ import annotations

from service.intake.follow_up import client_address


def test_client_address_takes_the_entry_the_trusted_proxies_vouch_for() -> None:
    forged_chain = ["6.6.6.6, 198.51.100.7", "10.0.0.2"]  # two headers; the client forged 6.6.6.6
    assert client_address("10.0.0.9", forged_chain, 0) == "10.0.0.9"  # no proxy trusted: the peer
    assert client_address("10.0.0.9", forged_chain, 1) == "10.0.0.2"
    assert client_address("10.0.0.9", forged_chain, 2) == "198.51.100.7"
    assert client_address("10.0.0.9", [], 1) == "10.0.0.9"  # bypassed the proxy: the peer
    assert client_address("10.0.0.9", ["198.51.100.7"], 2) == "10.0.0.9"  # shorter than the hops
    assert client_address(None, [], 0) == "unknown"
