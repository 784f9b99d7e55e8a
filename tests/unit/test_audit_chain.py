"""Pure chain logic: hashing is canonical and every kind of tampering is caught."""

from __future__ import annotations

import dataclasses

from service.audit.chain import GENESIS, LinkFields, StoredLink, canonical_json, entry_hash, verify_chain


def build(n: int, chain: int = 0) -> list[StoredLink]:
    links, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = LinkFields(
            chain,
            seq,
            f"2026-01-01T00:00:{seq:02d}.000000Z",
            "staff:a",
            "clue.read",
            "clue",
            f"c{seq}",
            canonical_json({"n": seq}),
            "sha256",
            prev,
        )
        prev = entry_hash(fields)
        links.append(StoredLink(seq, fields, prev))
    return links


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": "线"}) == canonical_json({"a": "线", "b": 1}) == '{"a":"线","b":1}'


def test_intact_chain_verifies() -> None:
    links = build(5)
    assert verify_chain(0, links, (5, links[-1].stored_hash)) is None
    assert verify_chain(0, [], (0, GENESIS)) is None


def test_altered_entry_is_named() -> None:
    links = build(5)
    altered = dataclasses.replace(links[2].fields, actor="staff:b")
    links[2] = StoredLink(links[2].row_id, altered, links[2].stored_hash)
    problem = verify_chain(0, links, (5, links[-1].stored_hash))
    assert problem and problem.seq == 3 and "altered" in problem.reason


def test_deleted_entry_is_caught() -> None:
    links = build(5)
    del links[1]
    problem = verify_chain(0, links, (5, links[-1].stored_hash))
    assert problem and problem.seq == 3


def test_reordered_entries_are_caught() -> None:
    links = build(5)
    a, b = links[1], links[2]
    links[1] = StoredLink(a.row_id, dataclasses.replace(b.fields, seq=2), b.stored_hash)
    links[2] = StoredLink(b.row_id, dataclasses.replace(a.fields, seq=3), a.stored_hash)
    assert verify_chain(0, links, (5, links[-1].stored_hash)) is not None


def test_truncated_tail_is_caught_by_the_head() -> None:
    links = build(5)
    problem = verify_chain(0, links[:4], (5, links[-1].stored_hash))
    assert problem and "head" in problem.reason


def test_unknown_suite_is_a_problem_not_a_crash() -> None:
    links = build(2)
    links[0] = StoredLink(1, dataclasses.replace(links[0].fields, suite="md5"), links[0].stored_hash)
    problem = verify_chain(0, links, None)
    assert problem and "suite" in problem.reason
