"""Web channel options that need their own app: kept originals (identity key) and trusted proxy hops."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from service.app.main import create_app
from service.app.runtime import key_paths
from service.attachments.models import Attachment
from service.intake.models import Receipt
from service.intake.receipts import receipt_hash
from service.platform.crypto.envelope import EnvelopeError
from service.platform.crypto.keys import read_key_pair
from service.platform.crypto.stream import decrypt_stream
from tests.helpers.app import Harness, make_settings, unique
from tests.helpers.media import jpeg_with_gps
from tests.helpers.web import hidden_fields, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")


@asynccontextmanager
async def app_with(
    data_dir: Path, database_url: str, **env: str
) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        app = create_app(make_settings(data_dir, database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tipline.test") as client:
            yield app, client


async def _attachments_of(runtime, code: str) -> list[Attachment]:  # noqa: ANN001
    """The attachments of the report this receipt code opens."""
    async with runtime.session_factory() as session:
        clue_id = await session.scalar(
            select(Receipt.clue_id).where(
                Receipt.code_hash == receipt_hash(runtime.lookup_key("receipt"), code)
            )
        )
        return list(
            (await session.execute(select(Attachment).where(Attachment.clue_id == clue_id))).scalars()
        )


async def _plain(key: bytes, blob_id: str, store: Path) -> bytes:
    raw = (store / blob_id[:2] / blob_id).read_bytes()

    async def chunks() -> AsyncIterator[bytes]:
        yield raw

    return b"".join([c async for c in decrypt_stream(key, f"attachment/{blob_id}", chunks())])


async def test_originals_kept_with_the_identity_key_when_asked(
    fresh_database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    photo = jpeg_with_gps()
    async with app_with(data_dir, fresh_database_url, TIPLINE_WEB_KEEP_ORIGINALS="true") as (app, client):
        runtime = app.state.runtime  # type: ignore[attr-defined]
        harness = Harness(client, runtime, data_dir, fresh_database_url)
        _, holder = await harness.add_staff(unique("督办"), ["supervisor"])  # holds the clue's key
        response = await post_report(client, {"text": unique("民警收红包")}, files=[("photo.jpg", photo)])
        assert response.status_code == 200, response.text
        [row] = await _attachments_of(runtime, receipt_from(response.text))
        # The cleaned copy's key is sealed to the clue's own key at registration (compartments).
        sanitised_key = await harness.open_item(
            holder, row.clue_id, row.wrapped_key, f"attachment/{row.blob_id}"
        )
    assert row.original_blob_id and row.original_wrapped_key and row.original_blob_id != row.blob_id
    store = data_dir / "blobs"
    original_binding = f"attachment/{row.original_blob_id}"
    # The case key (what staff processes hold) cannot open the original's file key.
    with pytest.raises(EnvelopeError):
        runtime.keys.open(row.original_wrapped_key, original_binding)
    # The identity key can, and the original still carries its GPS; the copy staff read does not.
    identity = read_key_pair(key_paths(runtime.settings)["identity_private"])
    ring = runtime.keys.with_private([identity])
    original = await _plain(
        ring.open(row.original_wrapped_key, original_binding), row.original_blob_id, store
    )
    assert original == photo
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    sanitised = await _plain(sanitised_key, row.blob_id, store)
    assert not Image.open(io.BytesIO(sanitised)).getexif().get_ifd(0x8825)
    assert b"PhoneMaker" not in sanitised
    for path in store.rglob("*"):
        if path.is_file():
            assert b"PhoneMaker" not in path.read_bytes()  # both stored encrypted


async def test_originals_not_kept_by_default(harness) -> None:  # noqa: ANN001
    response = await post_report(
        harness.client, {"text": unique("民警收红包")}, files=[("p.jpg", jpeg_with_gps())]
    )
    assert response.status_code == 200, response.text
    [row] = await _attachments_of(harness.runtime, receipt_from(response.text))
    assert row.original_blob_id is None and row.original_wrapped_key is None
    blobs = [p.name for p in (harness.data_dir / "blobs").rglob("*") if p.is_file() and len(p.name) == 32]
    assert row.blob_id in blobs


# --- Trusted proxy hops ---------------------------------------------------------------------------


async def _wrong_code(client: httpx.AsyncClient, forwarded: str) -> None:
    page = await client.get("/status")
    data = {**hidden_fields(page.text), "code": "1" * 25}
    response = await client.post("/status", data=data, headers={"X-Forwarded-For": forwarded})
    assert response.status_code == 404
    api = await client.post(
        "/api/v1/receipt/status", json={"receipt": "2" * 25}, headers={"X-Forwarded-For": forwarded}
    )
    assert api.status_code == 404


@pytest.mark.parametrize("hops", [0, 1])
async def test_throttle_key_behind_a_proxy(fresh_database_url: str, tmp_path: Path, hops: int) -> None:
    env = {"TIPLINE_WEB_LOOKUP_FLOOR_SECONDS": "0", "TIPLINE_WEB_TRUSTED_PROXY_HOPS": str(hops)}
    async with app_with(tmp_path / "data", fresh_database_url, **env) as (app, client):
        await _wrong_code(client, "6.6.6.6, 203.0.113.5")
        await _wrong_code(client, "203.0.113.6")
        throttle = app.state.receipt_throttle  # type: ignore[attr-defined]
        peer = "127.0.0.1"  # httpx's ASGI transport: every request comes from the proxy's address
        if hops == 0:
            assert throttle.failures(peer) == 4
            assert throttle.failures("203.0.113.5") == 0
        else:
            assert throttle.failures("203.0.113.5") == 2 and throttle.failures("203.0.113.6") == 2
            assert throttle.failures("6.6.6.6") == 0 and throttle.failures(peer) == 0
        assert throttle.tracked_clients() == (1 if hops == 0 else 2)
