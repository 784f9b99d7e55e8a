"""Upload forms on the staff pages: a call's recording and a letter's scanned pages, sent as multipart and
parsed from the stream (never ``request.form()``, which spools to plaintext temporary files)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import func, select
from starlette.requests import Request

from service.attachments.models import Attachment
from service.platform.timeutil import LOCAL
from service.registry.additions import ClueAddition
from tests.helpers.app import Harness, auth
from tests.helpers.hotline import call_body
from tests.helpers.media import png_bytes, wav_bytes
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff


def _blobs(harness: Harness) -> int:
    return sum(1 for p in (harness.data_dir / "blobs").rglob("*") if p.is_file())


async def _count(harness: Harness, model: type, clue_id: str) -> int:
    async with harness.runtime.session_factory() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(model.clue_id == clue_id))
        )


@contextmanager
def settings(harness: Harness, **changes: object) -> Iterator[None]:
    saved = harness.runtime.settings
    harness.runtime.settings = saved.model_copy(update=changes)
    try:
        yield
    finally:
        harness.runtime.settings = saved


@pytest.fixture
def no_spooling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starlette's form parser is what spools uploads to temporary files: it must not run on them."""
    original = Request._get_form

    async def guarded(self: Request, **kwargs: object) -> object:
        if self.url.path.endswith(("/recording", "/pages")) and self.method == "POST":
            raise AssertionError("request.form() was called on a streamed upload")
        return await original(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Request, "_get_form", guarded)


def files(csrf: str | None, *parts: tuple[str, bytes, str], csrf_last: bool = False) -> list:
    fields = [("csrf_token", (None, csrf.encode()))] if csrf is not None else []
    uploads = [("file", (name, io.BytesIO(body), kind)) for name, body, kind in parts]
    return uploads + fields if csrf_last else fields + uploads


async def test_operator_uploads_the_recording_from_the_call_page(harness: Harness, no_spooling: None) -> None:
    operator = await make_web_staff(harness, ["operator"])
    other = await make_web_staff(harness, ["operator"])
    made = await harness.client.post("/api/v1/hotline/calls", json=call_body(), headers=auth(operator.token))
    clue_id = made.json()["clue_id"]
    path = f"/staff/hotline/calls/{clue_id}/recording"
    audio = wav_bytes(20.0)  # 320 KB: over the generic request-body limit, under the recording cap
    assert len(audio) > harness.runtime.settings.max_request_bytes
    async with log_in(harness, operator) as client:
        form = await client.get(path)
        assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
        assert form.headers["cache-control"] == "no-store" and "<script" not in form.text
        csrf = csrf_of(form.text)
        before = _blobs(harness)
        # Refused before a byte is stored: no CSRF field, the field after the file, a wrong token.
        for body in (
            files(None, ("call.wav", audio, "audio/wav")),
            files(csrf, ("call.wav", audio, "audio/wav"), csrf_last=True),
            files("0" * 43, ("call.wav", audio, "audio/wav")),
        ):
            assert (await client.post(path, files=body)).status_code == 403
        assert _blobs(harness) == before
        not_audio = await client.post(path, files=files(csrf, ("p.png", png_bytes(), "image/png")))
        assert not_audio.status_code == 422 and "此处不接受这种文件" in not_audio.text
        with settings(harness, hotline_recording_max_bytes=100 * 1024):
            too_big = await client.post(path, files=files(csrf, ("call.wav", audio, "audio/wav")))
            assert too_big.status_code == 413 and "文件太大" in too_big.text
        assert _blobs(harness) == before and await _count(harness, ClueAddition, clue_id) == 1
        done = await client.post(path, files=files(csrf, ("call.wav", audio, "audio/wav")))
        assert done.status_code == 201, done.text
        assert "已保存 1 个文件" in done.text
        assert _blobs(harness) == before + 1
    async with harness.runtime.session_factory() as session:
        kinds = (
            await session.execute(select(ClueAddition.kind).where(ClueAddition.clue_id == clue_id))
        ).scalars()
        assert sorted(kinds) == ["call_record", "call_recording"]
    async with log_in(harness, other) as client:  # only the operator who registered the call
        assert (await client.get(path)).status_code == 404
        page = await client.get("/staff/hotline/calls/new")
        refused = await client.post(path, files=files(csrf_of(page.text), ("call.wav", audio, "audio/wav")))
        assert refused.status_code == 404


async def test_scanned_pages_are_all_kept_or_none(harness: Harness, no_spooling: None) -> None:
    operator = await make_web_staff(harness, ["operator"])
    investigator = await make_web_staff(harness, ["investigator"])
    letter = {"postmark_date": datetime.now(LOCAL).date().isoformat(), "text": "来信：检察官吃拿卡要。"}
    made = await harness.client.post("/api/v1/letters", json=letter, headers=auth(operator.token))
    clue_id = made.json()["clue_id"]
    path = f"/staff/letters/{clue_id}/pages"
    async with log_in(harness, operator) as client:
        csrf = csrf_of((await client.get(path)).text)
        before = _blobs(harness)
        bad_second = files(
            csrf, ("1.png", png_bytes(), "image/png"), ("2.png", b"\x00junk" * 50, "image/png")
        )
        refused = await client.post(path, files=bad_second)
        assert refused.status_code == 422
        assert _blobs(harness) == before and await _count(harness, Attachment, clue_id) == 0
        with settings(harness, letter_page_max_bytes=1024):
            big = await client.post(
                path, files=files(csrf, ("1.png", png_bytes() + b"\x00" * 4096, "image/png"))
            )
            assert big.status_code == 413
        empty = await client.post(path, files=files(csrf, ("", b"", "application/octet-stream")))
        assert empty.status_code == 422 and "请选择要上传的文件" in empty.text
        done = await client.post(
            path, files=files(csrf, ("1.png", png_bytes(), "image/png"), ("2.png", png_bytes(), "image/png"))
        )
        assert done.status_code == 201 and "已保存 2 个文件" in done.text
        assert await _count(harness, Attachment, clue_id) == 2 and _blobs(harness) == before + 2
    async with log_in(harness, investigator) as client:
        page = await client.get("/staff")
        assert (await client.get(path)).status_code == 403
        denied = await client.post(path, files=files(csrf_of(page.text), ("1.png", png_bytes(), "image/png")))
        assert denied.status_code == 403
    assert await _count(harness, Attachment, clue_id) == 2


async def test_the_registered_pages_link_to_the_upload_forms(harness: Harness) -> None:
    operator = await make_web_staff(harness, ["operator"])
    async with log_in(harness, operator) as client:
        page = await client.get("/staff/letters/new")
        form = {
            "csrf_token": csrf_of(page.text),
            "postmark_date": datetime.now(LOCAL).date().isoformat(),
            "text": "来信反映法官枉法裁判。",
        }
        done = await client.post("/staff/letters", data=form)
        assert done.status_code == 201, done.text
        assert "/pages" in done.text and "上传来信扫描页" in done.text
