"""Staff attachment list and download over real HTTP, on both databases: visibility, audit, headers,
metadata-free bytes, and refusal of a tampered blob."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from PIL import Image
from sqlalchemy import select

from service.attachments.models import Attachment
from service.audit.models import AuditEntry
from service.platform.crypto.stream import StreamAuthenticationError
from tests.helpers.app import auth, unique
from tests.helpers.media import jpeg_with_gps
from tests.helpers.web import clue_of_receipt, open_status, post_reply, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOTES = ("某区法院执行法官收受当事人红包，压着案子不办。\n" * 12_000).encode()  # ~ 430 KB, several segments


async def _reported(harness) -> tuple[str, list[Attachment]]:  # noqa: ANN001
    """A web report with a photo and a long text file, and a reply with one more file."""
    client = harness.client
    response = await post_report(
        client,
        {"text": unique("法官收红包")},
        files=[("张三的照片.jpg", jpeg_with_gps()), ("notes.txt", NOTES)],
    )
    assert response.status_code == 200, response.text
    code = receipt_from(response.text)
    page = await open_status(client, code)
    reply = await post_reply(client, page.text, "补充一份材料", files=[("more.txt", "补充材料".encode())])
    assert reply.status_code == 200, reply.text
    clue_id = await clue_of_receipt(harness, code)
    async with harness.runtime.session_factory() as session:
        rows = list(
            (
                await session.execute(
                    select(Attachment)
                    .where(Attachment.clue_id == clue_id)
                    .order_by(Attachment.created_at, Attachment.id)
                )
            ).scalars()
        )
    return clue_id, rows


def _blob(harness, row: Attachment):  # noqa: ANN001, ANN202
    return harness.data_dir / "blobs" / row.blob_id[:2] / row.blob_id


async def _downloads(harness, attachment_id: str) -> list[str]:  # noqa: ANN001
    async with harness.runtime.session_factory() as session:
        entries = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "attachment.downloaded"))
        ).scalars()
        return [
            e.actor for e in entries if json.loads(e.details or "{}").get("attachment_id") == attachment_id
        ]


async def test_list_and_download_for_those_who_see_the_clue(harness) -> None:  # noqa: ANN001
    # Before the report: the supervisors at registration get a wrap of the clue's key (compartments).
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    clue_id, rows = await _reported(harness)
    photo = next(r for r in rows if r.kind == "image/jpeg")
    reply_file = next(r for r in rows if r.message_id is not None)
    client = harness.client
    investigator_id, investigator = await harness.add_staff(unique("inv"), ["investigator"])
    _, outsider = await harness.add_staff(unique("inv2"), ["investigator"])
    _, admin = await harness.add_staff(unique("admin"), ["admin"])
    _, operator = await harness.add_staff(unique("op"), ["operator"])

    listing = await client.get(f"/api/v1/clues/{clue_id}/attachments", headers=auth(supervisor))
    assert listing.status_code == 200, listing.text
    items = {item["id"]: item for item in listing.json()}
    assert set(items) == {r.id for r in rows} and len(items) == 3
    assert items[photo.id]["kind"] == "image/jpeg"
    assert "jpeg:APP1/Exif=1" in items[photo.id]["removed_metadata"]
    assert items[photo.id]["size"] == photo.size and items[photo.id]["created_at"]
    assert items[reply_file.id]["message_id"] == reply_file.message_id  # a reporter reply's file
    assert "张三" not in listing.text  # the uploaded name is never shown

    response = await client.get(f"/api/v1/attachments/{photo.id}", headers=auth(supervisor))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"] == f'attachment; filename="attachment-{photo.id}.jpg"'
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert int(response.headers["content-length"]) == len(response.content) == photo.size
    assert hashlib.sha256(response.content).hexdigest() == photo.sha256
    assert not Image.open(io.BytesIO(response.content)).getexif().get_ifd(0x8825)  # GPS gone
    assert b"PhoneMaker" not in response.content

    notes = next(r for r in rows if r.kind.startswith("text/") and r.message_id is None)
    text = await client.get(f"/api/v1/attachments/{notes.id}", headers=auth(supervisor))
    assert text.content == NOTES and text.headers["content-disposition"].endswith('.txt"')

    # Roles without the permission: 403; an investigator it is not assigned to: 404, as if absent.
    for token, status in ((admin, 403), (operator, 403), (outsider, 404), (investigator, 404)):
        assert (
            await client.get(f"/api/v1/clues/{clue_id}/attachments", headers=auth(token))
        ).status_code == status
        assert (
            await client.get(f"/api/v1/attachments/{photo.id}", headers=auth(token))
        ).status_code == status
    assert (await client.get(f"/api/v1/attachments/{photo.id}")).status_code == 401
    missing = await client.get("/api/v1/attachments/not-a-real-id", headers=auth(supervisor))
    assert missing.status_code == 404 and missing.json()["error"]["message_en"] == "attachment not found"

    # Once assigned, the investigator sees the files too.
    assigned = await client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": investigator_id}, headers=auth(supervisor)
    )
    assert assigned.status_code == 200, assigned.text
    mine = await client.get(f"/api/v1/attachments/{reply_file.id}", headers=auth(investigator))
    assert mine.status_code == 200 and mine.content == "补充材料".encode()
    assert (await client.get(f"/api/v1/attachments/{photo.id}", headers=auth(outsider))).status_code == 404

    # Every download is audited; refusals are not downloads.
    assert len(await _downloads(harness, photo.id)) == 1
    assert len(await _downloads(harness, reply_file.id)) == 1


async def test_tampered_blob_is_refused(harness) -> None:  # noqa: ANN001
    _, supervisor = await harness.add_staff(unique("sup"), ["supervisor"])
    clue_id, rows = await _reported(harness)
    client = harness.client
    photo = next(r for r in rows if r.kind == "image/jpeg")
    path = _blob(harness, photo)
    data = bytearray(path.read_bytes())
    data[60] ^= 0x01  # inside the first (here: only) segment
    path.write_bytes(bytes(data))
    refused = await client.get(f"/api/v1/attachments/{photo.id}", headers=auth(supervisor))
    assert refused.status_code == 409
    body = refused.json()["error"]
    assert body["code"] == "attachment_unavailable" and body["message"] and body["message_en"]
    assert b"\xff\xd8" not in refused.content  # nothing of the file
    assert await _downloads(harness, photo.id) == []

    # Damage far into a long file: the answer has begun, so the stream stops short of Content-Length.
    notes = next(r for r in rows if r.kind.startswith("text/") and r.message_id is None)
    path = _blob(harness, notes)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # in the last segment
    path.write_bytes(bytes(data))
    # (httpx's ASGI transport surfaces the app's error; a real server cuts the connection short.)
    received = bytearray()
    with pytest.raises(StreamAuthenticationError):
        async with client.stream("GET", f"/api/v1/attachments/{notes.id}", headers=auth(supervisor)) as r:
            async for chunk in r.aiter_raw():
                received += chunk
    assert len(received) < notes.size

    # A missing blob is refused the same way.
    reply_file = next(r for r in rows if r.message_id is not None)
    _blob(harness, reply_file).unlink()
    gone = await client.get(f"/api/v1/attachments/{reply_file.id}", headers=auth(supervisor))
    assert gone.status_code == 409
    listing = await client.get(f"/api/v1/clues/{clue_id}/attachments", headers=auth(supervisor))
    assert len(listing.json()) == 3
