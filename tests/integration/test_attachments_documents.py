"""Documents staff add to a clue they handle: streamed, type from the bytes, metadata removed, encrypted,
listed and downloaded with the clue's attachments, audited — on both databases."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from service.audit.models import AuditEntry
from tests.helpers.app import Harness, auth
from tests.helpers.media import jpeg_with_gps
from tests.helpers.registry import make_world, step, submit


async def test_handler_adds_a_document_others_cannot(harness: Harness) -> None:
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201  # routed to the investigator
    url = f"/api/v1/clues/{clue_id}/documents"
    photo = jpeg_with_gps()

    added = await harness.client.post(url, content=photo, headers=auth(inv))
    assert added.status_code == 201, added.text
    attachment_id = added.json()["id"]
    listed = (await harness.client.get(f"/api/v1/clues/{clue_id}/attachments", headers=auth(sup))).json()
    assert attachment_id in [a["id"] for a in listed]
    download = await harness.client.get(f"/api/v1/attachments/{attachment_id}", headers=auth(sup))
    assert download.status_code == 200
    assert b"GPS" not in download.content and Image.open(io.BytesIO(download.content)).getexif().get(0x8825) is None

    assert (await harness.client.post(url, content=photo, headers=auth(world.other_investigator[1]))).status_code == 404
    assert (await harness.client.post(url, content=photo, headers=auth(world.operator[1]))).status_code == 403
    assert (await harness.client.post(url, content=b"MZ\x90\x00" + b"\x00" * 200, headers=auth(inv))).status_code == 422
    assert (await harness.client.post(url, content=photo)).status_code == 401
    async with harness.runtime.session_factory() as session:
        actions = list(
            (await session.execute(select(AuditEntry.action).where(AuditEntry.object_id == clue_id))).scalars()
        )
    assert actions.count("clue.attachments_added") == 1
