"""Attachment cleaning end to end, on both databases, over real HTTP against the ASGI app: the
conformance corpus of real dirty files (mat2's test suite, through tests/helpers/conformance.py) and the
crafted files of issue 16's review (tests/helpers/dirty.py) go in through staff uploads, the public web
form and mail; what staff can download is judged by the independent oracle (tests/helpers/oracle.py).
Every corpus file is either cleaned or refused/sealed with a reason; none crashes the upload."""

from __future__ import annotations

import os
import re

import pytest
from sqlalchemy import select

from service.attachments.models import Attachment
from service.mail.ingest import MailIngest
from service.platform.crypto.envelope import EnvelopeError
from tests.helpers import dirty
from tests.helpers.app import auth, unique
from tests.helpers.conformance import conformance_files
from tests.helpers.mail import mail
from tests.helpers.media import jpeg_with_gps
from tests.helpers.oracle import findings
from tests.helpers.registry import make_world, step, submit
from tests.helpers.tools import apt, require_executable
from tests.helpers.web import clue_of_receipt, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")

CORPUS = "metadata/mat2"
LABEL = re.compile(r"^[a-z0-9]+:[A-Za-z0-9/_-]+=\d+$|^[a-z0-9]+=\d+$")  # fixed label, count
SUFFIX = {
    "application/pdf": ".pdf", "image/heic": ".heic", "video/mp4": ".mp4", "image/jpeg": ".jpg",
    "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp", "audio/wav": ".wav",
    "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "image/tiff": ".tiff", "image/svg+xml": ".svg",
    "application/zip": ".zip",
}  # fmt: skip


@pytest.fixture(autouse=True)
def tools() -> None:
    require_executable("mat2", apt("mat2"))
    require_executable("ffmpeg", apt("ffmpeg"))


def _suffix(kind: str) -> str:
    if "opendocument" in kind:
        return ".odt"
    return SUFFIX.get(kind, ".docx" if "wordprocessing" in kind else ".bin")


async def test_conformance_corpus_cleaned_or_refused_with_a_reason(harness) -> None:  # noqa: ANN001
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    outcome: dict[str, str] = {}
    problems: list[str] = []
    for path in conformance_files("*", CORPUS):
        if path.name == "LICENSE":
            continue
        added = await harness.client.post(
            f"/api/v1/clues/{clue_id}/documents", content=path.read_bytes(), headers=auth(inv)
        )
        if added.status_code == 422:
            assert added.json()["error"]["message"], path.name  # refused with a reason
            outcome[path.name] = "refused"
            continue
        if added.status_code != 201:
            problems.append(f"{path.name}: HTTP {added.status_code}")
            continue
        attachment_id = added.json()["id"]
        listed = (await harness.client.get(f"/api/v1/clues/{clue_id}/attachments", headers=auth(sup))).json()
        (item,) = [a for a in listed if a["id"] == attachment_id]
        assert all(LABEL.match(label) for label in item["removed_metadata"]), item["removed_metadata"]
        download = await harness.client.get(f"/api/v1/attachments/{attachment_id}", headers=auth(sup))
        if item["sealed_reason"]:
            assert item["sealed_reason_text"] and download.status_code == 409
            assert download.json()["error"]["code"] == "attachment_sealed"
            outcome[path.name] = f"sealed:{item['sealed_reason']}"
            continue
        assert download.status_code == 200, (path.name, download.text)
        found = findings(download.content, suffix=_suffix(item["kind"]))
        if found:
            problems.append(f"{path.name}: {found}")
        outcome[path.name] = "cleaned"
    assert problems == []
    cleaned = {name for name, result in outcome.items() if result == "cleaned"}
    # The kinds this service accepts come out clean (mat2's own docx, pdf, heic, mp4 and our filters').
    assert {
        "dirty.docx",
        "dirty.pdf",
        "dirty.heic",
        "dirty.mp4",
        "dirty.jpg",
        "dirty.png",
        "revision.docx",
    } <= cleaned
    assert {
        "comment.docx",
        "dirty_with_nsid.docx",
        "office_revision_session_ids.docx",
        "embedded.docx",
    } <= cleaned
    assert outcome["embedded_corrupted.docx"] == "sealed:cleaner-failed"  # mat2 cannot read its embedded file
    assert {"dirty.odt", "revision.odt", "weird_producer.odt"} <= cleaned
    # Redrawn by mat2 (TIFF through GdkPixbuf, SVG through librsvg) and ODG like ODT; an SVG librsvg cannot
    # draw is sealed; EPUB stays refused (its chapters are HTML: see service/attachments/cleaners.py).
    assert {"dirty.tiff", "clean.tif", "dirty.svg", "dirty.odg"} <= cleaned
    assert outcome["weird.svg"] == "sealed:cleaner-failed" and outcome["dirty.epub"] == "refused"


def _label_ok(items: list[str]) -> bool:
    return all(LABEL.match(label) for label in items)


async def test_crafted_files_through_the_web_form(harness) -> None:  # noqa: ANN001
    world = await make_world(harness)
    video = dirty.dirty_video(require_executable("ffmpeg", apt("ffmpeg")), "mp4")
    names = ["张三的举报材料.docx", "张三_证据.pdf", "IMG_张三.mp4", "张三.jpg"]
    files = [dirty.dirty_docx(), dirty.dirty_pdf(), video, jpeg_with_gps(artist=dirty.ARTIST)]
    response = await post_report(
        harness.client, {"text": unique("局长收钱")}, files=list(zip(names, files, strict=True))
    )
    assert response.status_code == 200, response.text
    clue_id = await clue_of_receipt(harness, receipt_from(response.text))  # anonymous: the hour only
    async with harness.runtime.session_factory() as session:
        rows = list((await session.scalars(select(Attachment).where(Attachment.clue_id == clue_id))).all())
    assert len(rows) == 4
    for row in rows:
        assert row.name is not None and "张三".encode() not in row.name
        with pytest.raises(EnvelopeError):  # the staff process cannot open the uploaded name
            harness.runtime.keys.open(row.name, f"attachments/{row.id}/name")
    listing = await harness.client.get(
        f"/api/v1/clues/{clue_id}/attachments", headers=auth(world.supervisor[1])
    )
    assert listing.status_code == 200
    assert "张三" not in listing.text and dirty.LABEL_GUID not in listing.text
    items = listing.json()
    # Neutral names: a position in the listing and the extension of the kind found in the bytes.
    assert [a["name"].split(".")[0] for a in items] == ["附件1", "附件2", "附件3", "附件4"]
    assert sorted(a["name"].split(".")[1] for a in items) == ["docx", "jpg", "mp4", "pdf"]
    for item in items:
        assert item["sealed_reason"] is None and _label_ok(item["removed_metadata"]), item
        download = await harness.client.get(
            f"/api/v1/attachments/{item['id']}", headers=auth(world.supervisor[1])
        )
        assert download.status_code == 200
        assert "张三" not in download.headers["content-disposition"]
        assert findings(download.content, suffix=_suffix(item["kind"]), canaries=dirty.CANARIES) == [], item[
            "kind"
        ]


async def test_dirty_archive_through_the_web_form_and_mail(harness) -> None:  # noqa: ANN001
    """A ZIP holding a DOCX with authors, a JPEG with GPS and a ZIP inside it, its members named after the
    reporter: staff download one archive whose members are cleaned and neutrally named."""
    import io
    import zipfile

    world = await make_world(harness)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("张三的材料/张三_举报.docx", dirty.dirty_docx())
        archive.writestr("张三的材料/IMG_张三.jpg", jpeg_with_gps(artist=dirty.ARTIST))
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("C:/Users/canaryzw/photo.jpg", dirty.exif_jpeg())
        archive.writestr("旧.zip", inner.getvalue())
    data = buffer.getvalue()
    canaries = (*dirty.CANARIES, "张三")
    response = await post_report(harness.client, {"text": unique("局长收钱")}, files=[("张三.zip", data)])
    assert response.status_code == 200, response.text
    web_clue = await clue_of_receipt(harness, receipt_from(response.text))
    async with harness.runtime.session_factory() as session:
        before = set((await session.scalars(select(Attachment.id))).all())
    assert await MailIngest(harness.runtime)(mail(unique("举报某局"), attachment=data)) == "clue"
    async with harness.runtime.session_factory() as session:
        (mailed,) = [r for r in (await session.scalars(select(Attachment))).all() if r.id not in before]
    listing = await harness.client.get(
        f"/api/v1/clues/{web_clue}/attachments", headers=auth(world.supervisor[1])
    )
    (item,) = listing.json()
    assert (
        item["name"] == "附件1.zip" and item["sealed_reason"] is None and _label_ok(item["removed_metadata"])
    )
    for attachment_id in (item["id"], mailed.id):
        download = await harness.client.get(
            f"/api/v1/attachments/{attachment_id}", headers=auth(world.supervisor[1])
        )
        assert download.status_code == 200
        assert findings(download.content, suffix=".zip", canaries=canaries) == []
        assert zipfile.ZipFile(io.BytesIO(download.content)).namelist() == ["1.docx", "2.jpg", "3.zip"]


async def test_mail_attachment_cleaned(harness) -> None:  # noqa: ANN001
    world = await make_world(harness)
    async with harness.runtime.session_factory() as session:
        before = set((await session.scalars(select(Attachment.id))).all())
    # Small messages are handled in the server process, large ones (> 32 KB) in a worker process: both.
    large = dirty.dirty_docx(embedded=os.urandom(64 * 1024))
    legacy = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + dirty.AUTHOR.encode() * 4000
    for attachment in (dirty.dirty_docx(embedded=dirty.dirty_docx()), dirty.dirty_pdf(), large, legacy):
        assert await MailIngest(harness.runtime)(mail(unique("举报某局"), attachment=attachment)) == "clue"
    async with harness.runtime.session_factory() as session:
        rows = [r for r in (await session.scalars(select(Attachment))).all() if r.id not in before]
    assert len(rows) == 4
    (sealed,) = [r for r in rows if r.sealed_reason]
    assert sealed.sealed_reason == "no-cleaner-for-kind"  # sealed in the worker, key wrapped by the parent
    with pytest.raises(EnvelopeError):  # to the identity key, which no server holds
        harness.runtime.keys.open(sealed.wrapped_key, f"attachment/{sealed.blob_id}")
    for row in rows:
        if row.sealed_reason:
            continue
        assert row.sealed_reason is None and _label_ok(row.removed_metadata.split(","))
        download = await harness.client.get(
            f"/api/v1/attachments/{row.id}", headers=auth(world.supervisor[1])
        )
        assert download.status_code == 200
        assert findings(download.content, suffix=_suffix(row.kind), canaries=dirty.CANARIES) == []


async def test_uncleanable_staff_upload_is_sealed_and_shown_with_its_reason(harness) -> None:  # noqa: ANN001
    world = await make_world(harness)
    sup, inv = world.supervisor[1], world.investigator[1]
    clue_id = await submit(harness, world)
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    legacy = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + dirty.AUTHOR.encode()
    added = await harness.client.post(f"/api/v1/clues/{clue_id}/documents", content=legacy, headers=auth(inv))
    assert added.status_code == 201, added.text
    listed = (await harness.client.get(f"/api/v1/clues/{clue_id}/attachments", headers=auth(sup))).json()
    (item,) = [a for a in listed if a["id"] == added.json()["id"]]
    assert item["sealed_reason"] == "no-cleaner-for-kind" and "旧版 Office" in item["sealed_reason_text"]
    download = await harness.client.get(f"/api/v1/attachments/{item['id']}", headers=auth(sup))
    assert download.status_code == 409 and "封存" in download.json()["error"]["message"]
    async with harness.runtime.session_factory() as session:
        row = await session.get(Attachment, item["id"])
    with pytest.raises(EnvelopeError):  # only the identity key opens a sealed file
        harness.runtime.keys.open(row.wrapped_key, f"attachment/{row.blob_id}")
    blob = (harness.data_dir / "blobs" / row.blob_id[:2] / row.blob_id).read_bytes()
    assert dirty.AUTHOR.encode() not in blob


async def test_migration_scrubs_removed_metadata_names(fresh_database_url: str) -> None:
    """Rows written before 0025 listed field names taken from the file (a sensitivity label's GUID, PDF
    /Info keys); the migration leaves only a count."""
    import contextlib

    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from service.platform.db import create_engine
    from service.platform.migrations import alembic_config, run_migrations

    old = f"docx:docProps/custom.xml:MSIP_Label_{dirty.LABEL_GUID}_Enabled,pdf:/Company,png:tEXt"
    engine = create_engine(fresh_database_url)
    try:
        before = ScriptDirectory.from_config(alembic_config()).get_revision("0025").down_revision
        await run_migrations(engine, "upgrade", before)
        insert = (
            "INSERT INTO attachments (id, clue_id, blob_id, kind, size, sha256, wrapped_key,"
            " removed_metadata, created_at) VALUES (:id, :clue, :blob, 'image/png', 1, :sha, :key, :removed,"
            " CURRENT_TIMESTAMP)"
        )
        rows = [
            {"id": x * 36, "clue": "c" * 36, "blob": x * 32, "sha": "0" * 64, "key": b"k", "removed": removed}
            for x, removed in (("a", old), ("b", ""))
        ]
        # Rows without their clue: foreign keys off for this one connection.
        if fresh_database_url.startswith("sqlite"):
            import sqlite3

            with contextlib.closing(sqlite3.connect(fresh_database_url.split(":///", 1)[1])) as raw:
                raw.executemany(insert, rows)  # sqlite3 takes the same :named parameters
                raw.commit()
        else:
            async with engine.begin() as connection:
                await connection.execute(text("SET LOCAL session_replication_role = replica"))
                for row in rows:
                    await connection.execute(text(insert), row)
        await run_migrations(engine, "upgrade", "head")
        async with engine.connect() as connection:
            rows = dict(
                (await connection.execute(text("SELECT id, removed_metadata FROM attachments"))).all()
            )
        assert rows == {"a" * 36: "legacy:fields=3", "b" * 36: ""}
    finally:
        await engine.dispose()


async def test_old_case_key_names_resealed_to_the_identity_key_by_the_cli(harness) -> None:  # noqa: ANN001
    """Rows stored before uploaded names went to the identity key keep them under the CASE key, which staff
    hold; ``tipline attachments reseal-names`` moves each to the identity key (the same name, opened only by
    a custody release), audits it per clue, and changes nothing on a second run."""
    import asyncio

    from service.app.runtime import key_paths
    from service.audit.models import AuditEntry
    from service.platform.crypto.envelope import Envelope
    from service.platform.crypto.keys import read_key_pair
    from tests.helpers.app import cli_env, run_cli

    response = await post_report(
        harness.client,
        {"text": unique("局长收钱")},
        files=[("张三的举报.jpg", jpeg_with_gps()), ("李四_证据.jpg", jpeg_with_gps())],
    )
    assert response.status_code == 200, response.text
    clue_id = await clue_of_receipt(harness, receipt_from(response.text))
    async with harness.runtime.session_factory() as session:
        old, new = (await session.scalars(select(Attachment).where(Attachment.clue_id == clue_id))).all()
        # As stored before the change: the name sealed to the case key, which staff can open.
        old.name = harness.runtime.keys.seal_case("张三的举报.jpg".encode(), f"attachments/{old.id}/name")
        await session.commit()
        untouched = new.name
    assert harness.runtime.keys.open(old.name, f"attachments/{old.id}/name") == "张三的举报.jpg".encode()

    env = cli_env(harness.data_dir, harness.database_url)
    done = await asyncio.to_thread(run_cli, ["attachments", "reseal-names"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("1 attachment name")  # other tests' rows: new
    again = await asyncio.to_thread(run_cli, ["attachments", "reseal-names"], env)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1].startswith("0 ")  # idempotent

    identity = harness.runtime.keys.with_private(
        [read_key_pair(key_paths(harness.runtime.settings)["identity_private"])]
    )
    async with harness.runtime.session_factory() as session:
        resealed = await session.get(Attachment, old.id)
        other = await session.get(Attachment, new.id)
        entries = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.object_id == clue_id, AuditEntry.action == "attachment.names_resealed"
                )
            )
        ).all()
    assert Envelope.from_bytes(resealed.name).key_id.startswith("identity-")
    with pytest.raises(EnvelopeError):  # staff can no longer open it
        harness.runtime.keys.open(resealed.name, f"attachments/{old.id}/name")
    assert identity.open(resealed.name, f"attachments/{old.id}/name") == "张三的举报.jpg".encode()
    assert other.name == untouched  # already under the identity key: left as it was
    (entry,) = entries
    assert entry.actor == "cli" and "张三" not in (entry.details or "")
