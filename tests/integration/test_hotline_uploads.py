"""A call's recording (identity-key wrapped) and a letter's scanned pages, streamed through the pipeline."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
from sqlalchemy import select

from service.attachments.models import Attachment
from service.platform.crypto.envelope import Envelope, EnvelopeError
from service.platform.timeutil import LOCAL
from service.registry.additions import ClueAddition
from tests.helpers.app import Harness, auth, unique
from tests.helpers.hotline import call_body
from tests.helpers.media import png_bytes, wav_bytes


async def test_recording_key_is_wrapped_to_the_identity_key(harness: Harness) -> None:
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])  # holds the clue's key
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    _, other = await harness.add_staff(unique("op"), ["operator"])
    made = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    clue_id = made.json()["clue_id"]
    url = f"/api/v1/hotline/calls/{clue_id}/recording"
    audio = wav_bytes(2.0)  # larger than the generic request-body limit
    assert len(audio) > harness.runtime.settings.max_request_bytes / 10
    # Only the operator who registered the call may attach to it.
    assert (await harness.client.post(url, content=audio, headers=auth(other))).status_code == 404
    response = await harness.client.post(
        url, content=audio, headers={**auth(operator), "Content-Type": "audio/wav"}
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        row = await session.get(ClueAddition, response.json()["id"])
        assert row.kind == "call_recording" and row.reporter_copy is None
    # The record is sealed to the clue's own key (compartments): the staff server's case key does not open
    # it, a supervisor holding the clue's key does.
    binding = f"clue_additions/{row.id}/content"
    with pytest.raises(EnvelopeError):
        harness.runtime.keys.open(row.content, binding)
    record = json.loads(await harness.open_item(supervisor, clue_id, row.content, binding))
    assert record["kind"] == "audio/wav"
    wrapped = Envelope.from_bytes(base64.b64decode(record["identity_wrapped_key"]))
    assert wrapped.key_id == harness.runtime.keys.identity_public.key_id
    blob = harness.data_dir / "blobs"
    stored = b"".join(p.read_bytes() for p in blob.rglob("*") if p.is_file())
    assert audio[1000:1100] not in stored
    not_audio = await harness.client.post(url, content=png_bytes(), headers=auth(operator))
    assert not_audio.status_code == 422 and not_audio.json()["error"]["message_en"]
    junk = await harness.client.post(url, content=b"\x00junk" * 100, headers=auth(operator))
    assert junk.status_code == 422


async def test_scanned_letter_pages_become_attachments(harness: Harness) -> None:
    _, operator = await harness.add_staff(unique("op"), ["operator"])
    letter = {"postmark_date": datetime.now(LOCAL).date().isoformat(), "text": "来信：法官吃请。"}
    made = await harness.client.post("/api/v1/letters", json=letter, headers=auth(operator))
    clue_id = made.json()["clue_id"]
    for _ in range(2):
        page = await harness.client.post(
            f"/api/v1/letters/{clue_id}/pages", content=png_bytes(), headers=auth(operator)
        )
        assert page.status_code == 201, page.text
    async with harness.runtime.session_factory() as session:
        rows = list(
            (await session.execute(select(Attachment).where(Attachment.clue_id == clue_id))).scalars()
        )
        assert len(rows) == 2 and all(r.kind == "image/png" for r in rows)
    call = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator))
    wrong_channel = await harness.client.post(
        f"/api/v1/letters/{call.json()['clue_id']}/pages", content=png_bytes(), headers=auth(operator)
    )
    assert wrong_channel.status_code == 404
    _, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    refused = await harness.client.post(
        f"/api/v1/letters/{clue_id}/pages", content=png_bytes(), headers=auth(investigator)
    )
    assert refused.status_code == 403
