"""What staff write about a clue — history reasons and notes, progress requests and reports, consultations,
transfer requests and their decisions, classification corrections — is sealed to the clue's own key when it
has one: a supervisor holding the clue's wrap reads it, one without gets a clear 403 (or, in the list of
transfer requests, the reason withheld), and the staff server's key ring opens none of the stored bytes.
Both databases."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from service.auth import service as auth_service
from service.classification.models import ClassificationCorrection
from service.compartments import keys as compartment_keys
from service.compartments.models import ClueSealed
from service.custody import rotation
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.crypto.keys import KeyRing, generate_key_pair
from service.platform.timeutil import utcnow
from service.redaction.models import Redaction
from service.registry import transfer_requests
from service.registry.models import (
    NO_CASE_COPY,
    Clue,
    ClueTransition,
    Consultation,
    ProgressRequest,
    TransferRequest,
)
from tests.helpers.app import Harness, auth, running_app, unique
from tests.helpers.registry import seal_case_copy

TEXT = "乡财政所会计挪用扶贫资金，给亲戚发了三年的补贴。"
WRITTEN = "线人称会计的表弟在县财政局"  # what staff write: must stay with the clue's readers


async def _submit(harness: Harness) -> str:
    response = await harness.client.post("/api/v1/tips", json={"text": TEXT})
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        return str(
            await session.scalar(
                select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
            )
        )


def _sealed_to_the_clue_only(harness: Harness, data: bytes | None, binding: str) -> None:
    assert data is not None and WRITTEN.encode() not in data
    assert compartment_keys.sealed_to_clue(data)
    with pytest.raises(EnvelopeError):
        harness.runtime.keys.open(data, binding)


async def test_staff_items_open_only_for_the_clues_readers(harness: Harness) -> None:
    office = await harness.add_unit(unique("信访室"))
    other = await harness.add_unit(unique("案管室"))
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"], office)
    clue_id = await _submit(harness)
    _, late = await harness.add_staff(unique("新督办"), ["supervisor"], office)  # no wrap: joined later
    api = f"/api/v1/clues/{clue_id}"

    # Write: a note (history), a progress request, a consultation, a correction, a transfer request.
    note = await harness.client.post(f"{api}/notes", json={"text": WRITTEN}, headers=auth(holder))
    assert note.status_code == 201, note.text
    due_on = (utcnow() + timedelta(days=3)).date().isoformat()
    progress = await harness.client.post(
        f"{api}/progress-requests", json={"due_on": due_on, "note": WRITTEN}, headers=auth(holder)
    )
    assert progress.status_code == 201, progress.text
    consultation = await harness.client.post(
        f"{api}/consultations",
        json={
            "held_on": utcnow().date().isoformat(),
            "participants": ["甲", "乙"],
            "opinions": [WRITTEN],
            "conclusion": WRITTEN,
        },
        headers=auth(holder),
    )
    assert consultation.status_code == 201, consultation.text
    correction = await harness.client.post(
        f"{api}/classification", json={"labels": ["other"], "reason": WRITTEN}, headers=auth(holder)
    )
    assert correction.status_code in (200, 201), correction.text
    transfer = await harness.client.post(
        f"{api}/transfer-requests", json={"to_unit_id": other, "reason": WRITTEN}, headers=auth(holder)
    )
    assert transfer.status_code == 201, transfer.text

    # Stored: sealed to the clue's key, not to the case key.
    async with harness.runtime.session_factory() as session:
        for row in (
            await session.scalars(select(ClueTransition).where(ClueTransition.clue_id == clue_id))
        ).all():
            _sealed_to_the_clue_only(harness, row.sealed, f"clue_transitions/{row.id}/sealed")
        request = await session.scalar(select(ProgressRequest).where(ProgressRequest.clue_id == clue_id))
        assert request is not None
        _sealed_to_the_clue_only(harness, request.request, f"clue_progress_requests/{request.id}/request")
        held = await session.scalar(select(Consultation).where(Consultation.clue_id == clue_id))
        assert held is not None
        _sealed_to_the_clue_only(harness, held.record, f"clue_consultations/{held.id}/record")
        corrected = await session.scalar(
            select(ClassificationCorrection).where(ClassificationCorrection.clue_id == clue_id)
        )
        assert corrected is not None
        _sealed_to_the_clue_only(
            harness, corrected.reason, f"classification_corrections/{corrected.id}/reason"
        )
        asked = await session.scalar(select(TransferRequest).where(TransferRequest.clue_id == clue_id))
        assert asked is not None
        _sealed_to_the_clue_only(harness, asked.reason, f"transfer_requests/{asked.id}/reason")

    # Read: the holder reads each; the supervisor without a wrap is refused with a clear 403.
    history = await harness.client.get(f"{api}/history", headers=auth(holder))
    assert history.status_code == 200 and WRITTEN in {e.get("reason") for e in history.json()}
    listed = await harness.client.get(f"{api}/progress-requests", headers=auth(holder))
    assert listed.status_code == 200 and listed.json()[0]["note"] == WRITTEN
    consultations = await harness.client.get(f"{api}/consultations", headers=auth(holder))
    assert consultations.status_code == 200 and consultations.json()[0]["conclusion"] == WRITTEN
    classification = await harness.client.get(f"{api}/classification", headers=auth(holder))
    assert classification.status_code == 200
    assert classification.json()["corrections"][0]["reason"] == WRITTEN
    for path in ("history", "progress-requests", "consultations", "classification"):
        refused = await harness.client.get(f"{api}/{path}", headers=auth(late))
        assert refused.status_code == 403, (path, refused.text)
        assert "密钥" in refused.json()["error"]["message"], path
    async with harness.runtime.session_factory() as session:
        pending = {
            view.row.clue_id: view.reason
            for view in await transfer_requests.pending_with_reasons(
                session, principal=await auth_service.authenticate(session, holder), runtime=harness.runtime
            )
        }
        assert pending[clue_id] == WRITTEN
        withheld = {
            view.row.clue_id: view.reason
            for view in await transfer_requests.pending_with_reasons(
                session, principal=await auth_service.authenticate(session, late), runtime=harness.runtime
            )
        }
        assert withheld[clue_id] is None
    page = await harness.client.get("/api/v1/transfer-requests", headers=auth(late))
    assert page.status_code == 200 and WRITTEN not in page.text


async def test_a_clue_sealed_before_compartments_keeps_the_case_key(harness: Harness) -> None:
    office = await harness.add_unit(unique("信访室"))
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"], office)
    clue_id = await _submit(harness)
    async with harness.runtime.session_factory() as session:
        await session.execute(ClueSealed.__table__.delete().where(ClueSealed.clue_id == clue_id))
        await session.commit()
    api = f"/api/v1/clues/{clue_id}"
    assert (
        await harness.client.post(f"{api}/notes", json={"text": WRITTEN}, headers=auth(holder))
    ).status_code == 201
    async with harness.runtime.session_factory() as session:
        row = await session.scalar(
            select(ClueTransition).where(
                ClueTransition.clue_id == clue_id, ClueTransition.sealed.is_not(None)
            )
        )
        assert row is not None and not compartment_keys.sealed_to_clue(row.sealed)
        assert (
            json.loads(harness.runtime.keys.open(row.sealed, f"clue_transitions/{row.id}/sealed"))["reason"]
            == WRITTEN
        )
    history = await harness.client.get(f"{api}/history", headers=auth(holder))
    assert history.status_code == 200 and WRITTEN in {e.get("reason") for e in history.json()}


async def test_redacted_versions_open_only_for_the_clues_readers(harness: Harness) -> None:
    office = await harness.add_unit(unique("信访室"))
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"], office)
    clue_id = await _submit(harness)
    _, late = await harness.add_staff(unique("新督办"), ["supervisor"], office)
    api = f"/api/v1/clues/{clue_id}"
    made = await harness.client.post(
        f"{api}/redactions/texts",
        json={"target": "report", "base_version": 0, "quotes": ["扶贫资金"], "reason": WRITTEN},
        headers=auth(holder),
    )
    assert made.status_code == 201, made.text
    assert "扶贫资金" not in made.json()["text"]
    async with harness.runtime.session_factory() as session:
        row = await session.get(Redaction, made.json()["id"])
        assert row is not None
        for name in ("content", "marks", "reason"):
            _sealed_to_the_clue_only(harness, getattr(row, name), f"redactions/{row.id}/{name}")
    listed = await harness.client.get(f"{api}/redactions", headers=auth(holder))
    assert listed.status_code == 200 and listed.json()[0]["reason"] == WRITTEN
    refused = await harness.client.get(f"{api}/redactions", headers=auth(late))
    assert refused.status_code == 403 and "密钥" in refused.json()["error"]["message"]
    # Nor can one without the key make a version from the text they cannot read.
    again = await harness.client.post(
        f"{api}/redactions/texts",
        json={"target": "report", "base_version": 1, "quotes": ["会计"], "reason": "再遮"},
        headers=auth(late),
    )
    assert again.status_code == 403


async def test_case_key_rotation_leaves_what_is_sealed_to_the_clue(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """`tipline keys reencrypt` re-seals the case-key copy of a clue's fields and nothing else: the
    compartment copy and the items sealed to the clue's key are untouched, and its readers still read.
    A database of its own: every clue in it is re-sealed."""
    async with running_app(tmp_path, fresh_database_url) as harness:
        await _rotate_and_read(harness)


async def _rotate_and_read(harness: Harness) -> None:
    office = await harness.add_unit(unique("信访室"))
    _, holder = await harness.add_staff(unique("督办"), ["supervisor"], office)
    clue_id = await _submit(harness)
    api = f"/api/v1/clues/{clue_id}"
    assert (
        await harness.client.post(f"{api}/notes", json={"text": WRITTEN}, headers=auth(holder))
    ).status_code == 201
    older = await _submit(harness)
    await seal_case_copy(harness, older)  # as if registered before compartments: a case-key copy
    old = harness.runtime.keys
    new_case = generate_key_pair("case", old.suite)
    ring = KeyRing(
        case_public=new_case.public,
        identity_public=old.identity_public,
        contact_public=old.contact_public,
        escrow_public=old.escrow_public,
        private=[*old._private.values(), new_case],
    )
    async with harness.runtime.session_factory() as session:
        before = await session.get(ClueSealed, clue_id)
        assert before is not None
        kept = (before.content, before.accused, before.classification, before.public)
        note = await session.scalar(
            select(ClueTransition.sealed).where(
                ClueTransition.clue_id == clue_id, ClueTransition.sealed.is_not(None)
            )
        )
    async with harness.runtime.session_factory() as session:
        while await rotation.reencrypt_batch(session, keys=ring, limit=500):
            await session.commit()
        await session.commit()
    async with harness.runtime.session_factory() as session:
        clue = await session.get(Clue, clue_id)
        assert clue is not None and clue.content == NO_CASE_COPY  # a compartmented clue has no case-key copy
        older_row = await session.get(Clue, older)
        assert (
            older_row is not None and Envelope.from_bytes(older_row.content).key_id == new_case.public.key_id
        )
        after = await session.get(ClueSealed, clue_id)
        assert (
            after is not None and (after.content, after.accused, after.classification, after.public) == kept
        )
        assert (
            await session.scalar(
                select(ClueTransition.sealed).where(
                    ClueTransition.clue_id == clue_id, ClueTransition.sealed.is_not(None)
                )
            )
            == note
        )
    read = await harness.client.get(api, headers=auth(holder))
    assert read.status_code == 200 and read.json()["text"]
    history = await harness.client.get(f"{api}/history", headers=auth(holder))
    assert WRITTEN in {e.get("reason") for e in history.json()}
