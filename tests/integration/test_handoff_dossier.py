"""Hand-off dossiers on both databases: a sent-on clue exported over HTTP and by the CLI, verified by the
receiver's check (in process and as a subprocess), refused when anything was changed or signed by another
key; no identity in any member or in the PDF's text as an independent reader (pypdf) extracts it; the export
and the receiver's feedback audited; who may export."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select

from service.attachments.models import Attachment
from service.audit import checkpoints
from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.compartments import keys as compartment_keys
from service.handoff import archive
from service.handoff import service as handoff_service
from service.handoff.models import Dossier, DossierFeedback
from service.handoff.texts import masked_texts
from service.intake.models import Receipt
from service.platform.crypto.envelope import EnvelopeError
from service.platform.timeutil import LOCAL
from service.registry.models import ClueTransfer
from tests.helpers.app import Harness, auth, cli_env, run_cli, running_app, unique
from tests.helpers.registry import World, make_world, step
from tests.helpers.web import open_status, post_reply, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPORTER_NAME = "欧阳晓明"
PHONE = "13912345678"


def _id_number() -> str:
    """A valid resident ID number (check digit right), so the masking treats it as one."""
    body = "11010119900307123"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


ID_NUMBER = _id_number()


def _strip(text: str) -> str:
    return "".join(text.split())


async def _sent_on_clue(harness: Harness, world: World) -> tuple[str, str, str]:
    """A real-name web report naming the reporter in its text, with a file whose name identifies them and a
    reply giving a phone number; triaged (routed to the investigator), accepted and sent on to another
    organ. Returns (clue id, the original file name, the masked report as staff see it)."""
    original_name = f"{REPORTER_NAME}的举报材料-{unique('x')}.txt"
    text = f"我叫{REPORTER_NAME}，身份证号{ID_NUMBER}。{unique('城东派出所民警收了红包，案子压着不立')}"
    response = await post_report(
        harness.client,
        {
            "text": text,
            "accused_name": "赵某",
            "accused_unit": world.accused_unit_name,
            "identity": "real_name",
            "contact_name": REPORTER_NAME,
            "contact_phone": PHONE,
        },
        files=[(original_name, "补充材料：执行款去向不明。".encode())],
    )
    assert response.status_code == 200, response.text
    page = await open_status(harness.client, receipt_from(response.text))
    reply = await post_reply(harness.client, page.text, f"有事可以打我电话{PHONE}")
    assert reply.status_code == 200, reply.text
    async with harness.runtime.session_factory() as session:
        clue_id = (
            await session.execute(select(Receipt.clue_id).order_by(Receipt.created_at.desc()))
        ).first()[0]
    sup, inv = world.supervisor[1], world.investigator[1]
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    # Not handed off yet: nothing to export.
    early = await harness.client.post(f"/api/v1/clues/{clue_id}/dossier", headers=auth(inv))
    assert early.status_code == 409, early.text
    assert (await step(harness, clue_id, inv, "accept")).status_code == 201
    sent = await step(
        harness,
        clue_id,
        inv,
        "send_on",
        kind="organ",
        target="区人民检察院",
        document_number="区政法委移〔2026〕12号",
        approver_id=world.approver[0],
        decision_on=datetime.now(LOCAL).date().isoformat(),
    )
    assert sent.status_code == 201, sent.text
    clue = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(inv))
    masked = clue.json()["text"]
    assert REPORTER_NAME not in masked and ID_NUMBER not in masked
    return clue_id, original_name, masked


def _trusted(harness: Harness) -> list[archive.TrustedKey]:
    return [archive.read_trusted_key(harness.data_dir / "keys" / "audit-signing.public.json")]


def _verify_error(data: bytes, trusted: list[archive.TrustedKey]) -> str:
    with pytest.raises(archive.DossierInvalid) as caught:
        archive.verify_zip(io.BytesIO(data), trusted)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _repack(
    data: bytes, *, replace: dict[str, bytes] | None = None, drop: str = "", add: tuple = ()
) -> bytes:
    """The same dossier re-zipped with a member replaced, removed or added (valid ZIP, valid CRCs)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name != drop:
                target.writestr(name, (replace or {}).get(name, source.read(name)))
        for name, body in add:
            target.writestr(name, body)
    return out.getvalue()


def _flip_byte_in(data: bytes, member: str) -> bytes:
    """One byte changed in the middle of a member's stored bytes, the archive otherwise untouched."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive_file:
        info = archive_file.getinfo(member)
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    at = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


async def test_export_verify_tamper_identity_audit_feedback(harness: Harness, tmp_path: Path) -> None:
    world = await make_world(harness)
    clue_id, original_name, masked = await _sent_on_clue(harness, world)
    inv, sup = world.investigator[1], world.supervisor[1]
    url = f"/api/v1/clues/{clue_id}/dossier"

    # Who may export: the handler and supervisors; not another unit's investigator (the clue does not exist
    # for them), not an operator or admin (their role may not).
    assert (await harness.client.post(url, headers=auth(world.other_investigator[1]))).status_code == 404
    assert (await harness.client.post(url, headers=auth(world.operator[1]))).status_code == 403
    assert (await harness.client.post(url, headers=auth(world.admin[1]))).status_code == 403
    assert (await harness.client.post(url)).status_code == 401

    response = await harness.client.post(url, headers=auth(inv))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    data = response.content
    algorithm, digest = response.headers["x-dossier-hash"].split(":")
    assert algorithm == "sha256" and len(digest) == 64

    trusted = _trusted(harness)
    verified = archive.verify_zip(io.BytesIO(data), trusted)
    assert verified.digest == digest and verified.identity_included is False
    with zipfile.ZipFile(io.BytesIO(data)) as dossier:
        members = {name: dossier.read(name) for name in dossier.namelist()}
    registry_number = json.loads(members["manifest.json"])["registry_number"]
    assert verified.registry_number == registry_number
    files = [name for name in members if name.startswith("files/")]
    assert len(files) == 1 and files[0].endswith(".txt")
    assert "执行款去向不明".encode() in members[files[0]]

    # No identity anywhere: every member's bytes, the whole ZIP, and the PDF's text as pypdf reads it.
    pdf_text = _strip(
        "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(members["dossier.pdf"])).pages)
    )
    for secret in (REPORTER_NAME, PHONE, ID_NUMBER, original_name, original_name.removesuffix(".txt")):
        for encoding in ("utf-8", "utf-16-be", "gb18030"):
            needle = secret.encode(encoding)
            assert needle not in data, (secret, encoding)
            for name, body in members.items():
                assert needle not in body, (secret, name, encoding)
        assert _strip(secret) not in pdf_text, secret
    # ... and what the receiver needs is there: the number and the report as staff see it (masked).
    assert registry_number in pdf_text
    assert _strip(masked) in pdf_text and "［姓名］" in pdf_text and "［身份证号］" in pdf_text
    assert "［手机号］" in pdf_text  # the reporter's reply, masked
    assert "区人民检察院" in pdf_text and "区政法委移〔2026〕12号" in pdf_text

    # Every kind of change fails, each with a one-line message naming what is wrong.
    for member in members:
        assert member in _verify_error(_flip_byte_in(data, member), trusted)
    changed_file = _verify_error(_repack(data, replace={files[0]: b"changed"}), trusted)
    assert changed_file == f"{files[0]} was changed: its SHA-256 hash does not match the manifest"
    changed_pdf = _verify_error(
        _repack(data, replace={"dossier.pdf": members["dossier.pdf"] + b" "}), trusted
    )
    assert "dossier.pdf was changed" in changed_pdf
    removed = _verify_error(_repack(data, drop=files[0]), trusted)
    assert removed == f"{files[0]} listed in the manifest is missing"
    added = _verify_error(_repack(data, add=(("files/extra.txt", b"planted"),)), trusted)
    assert added == "files/extra.txt is not in the manifest (added after signing)"
    manifest = json.loads(members["manifest.json"])
    manifest["files"] = [e for e in manifest["files"] if e["path"] != files[0]]
    forged = _repack(data, replace={"manifest.json": json.dumps(manifest).encode()}, drop=files[0])
    assert _verify_error(forged, trusted) == "manifest.json was changed: its signature does not verify"
    stranger = checkpoints.load_or_create_signing_key(tmp_path / "elsewhere", "international")
    wrong_key = [archive.TrustedKey(stranger.key_id, stranger.algorithm, stranger.public)]
    assert "which is not a trusted key" in _verify_error(data, wrong_key)
    assert _verify_error(b"not a zip", trusted) == "not a dossier: not a readable ZIP archive"

    # The export is audited: who, which clue, the dossier's hash.
    async with harness.runtime.session_factory() as session:
        entries = list(
            (
                await session.execute(
                    select(AuditEntry).where(
                        AuditEntry.object_id == clue_id, AuditEntry.action == "clue.dossier_exported"
                    )
                )
            ).scalars()
        )
    # One was produced with the sending-on (recorded against the hand-off), one by this export.
    assert len(entries) == 2
    assert {e.actor for e in entries} == {f"staff:{world.investigator[0]}"}
    assert sorted(json.loads(e.details)["transfer_id"] is not None for e in entries) == [True, True]
    assert digest in {json.loads(e.details)["digest"] for e in entries}

    # The receiver's feedback, against the hash: supervisors only, sealed, audited, marks the hand-off.
    feedback_url = f"/api/v1/dossiers/{digest}/feedback"
    body = {"text": "区人民检察院已收到，正在初查。"}
    assert (await harness.client.post(feedback_url, json=body, headers=auth(inv))).status_code == 403
    assert (
        await harness.client.post(feedback_url, json={"text": "  "}, headers=auth(sup))
    ).status_code == 422
    unknown = await harness.client.post(f"/api/v1/dossiers/{'0' * 64}/feedback", json=body, headers=auth(sup))
    assert unknown.status_code == 404
    assert (
        await harness.client.post("/api/v1/dossiers/xyz/feedback", json=body, headers=auth(sup))
    ).status_code == 422
    recorded = await harness.client.post(feedback_url, json=body, headers=auth(sup))
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["digest"] == digest and recorded.json()["text"] == body["text"]
    listed = await harness.client.get(feedback_url, headers=auth(sup))
    assert [f["text"] for f in listed.json()] == [body["text"]]
    _, late = await harness.add_staff(
        unique("新督办"), ["supervisor"], world.handling_unit
    )  # holds no wrap of the clue
    refused = await harness.client.get(feedback_url, headers=auth(late))
    assert refused.status_code == 403 and "密钥" in refused.json()["error"]["message"]
    assert (await harness.client.get(f"/api/v1/dossiers/{digest}", headers=auth(late))).status_code == 403
    async with harness.runtime.session_factory() as session:
        row = await session.get(DossierFeedback, recorded.json()["id"])
        assert "正在初查".encode() not in row.body
        # Compartments: the feedback and the kept ZIP's file key are sealed to the clue's own key; the staff
        # server's key ring opens neither.
        kept = await session.scalar(select(Dossier).where(Dossier.digest == digest))
        for sealed, binding in (
            (row.body, f"dossier_feedback/{row.id}/body"),
            (kept.wrapped_key, f"dossiers/{kept.id}/zip"),
        ):
            assert compartment_keys.sealed_to_clue(sealed)
            with pytest.raises(EnvelopeError):
                harness.runtime.keys.open(sealed, binding)
        transfer = await session.scalar(
            select(ClueTransfer).where(ClueTransfer.clue_id == clue_id, ClueTransfer.kind == "organ")
        )
        assert transfer.feedback_at is not None
        feedback_entries = [
            json.loads(e.details)
            for e in (
                await session.execute(
                    select(AuditEntry).where(
                        AuditEntry.object_id == clue_id, AuditEntry.action == "clue.dossier_feedback"
                    )
                )
            ).scalars()
        ]
    assert [e["digest"] for e in feedback_entries] == [digest]

    # The receiver's check as a command: intact, then changed, then signed by a key it does not trust.
    env = cli_env(harness.data_dir, harness.database_url)
    key_file = harness.data_dir / "keys" / "audit-signing.public.json"
    good = tmp_path / "dossier.zip"
    good.write_bytes(data)
    ok = run_cli(["dossier", "verify", str(good), "--trusted-key", str(key_file)], env)
    assert ok.returncode == 0, ok.stderr
    assert f"dossier intact: {registry_number}" in ok.stdout and digest in ok.stdout
    bad = tmp_path / "changed.zip"
    bad.write_bytes(_repack(data, replace={files[0]: b"changed"}))
    refused = run_cli(["dossier", "verify", str(bad), "--trusted-key", str(key_file)], env)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"dossier NOT intact: {files[0]} was changed: its SHA-256 hash does not match the manifest"
    ]
    stranger_file = tmp_path / "elsewhere" / "audit-signing.public.json"
    untrusted = run_cli(["dossier", "verify", str(good), "--trusted-key", str(stranger_file)], env)
    assert untrusted.returncode == 1 and "which is not a trusted key" in untrusted.stderr


async def test_cli_export_acts_as_the_staff_member(harness: Harness, tmp_path: Path) -> None:
    world = await make_world(harness)
    clue_id, _, _ = await _sent_on_clue(harness, world)
    env = cli_env(harness.data_dir, harness.database_url)
    out = tmp_path / "dossier.zip"
    clue = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(world.supervisor[1]))
    number = clue.json()["registry_number"]

    outsider = run_cli(
        ["dossier", "export", number, "--out", str(out)], env, stdin=world.other_investigator[1] + "\n"
    )
    assert outsider.returncode == 1 and "clue not found" in outsider.stderr and not out.exists()
    no_token = run_cli(["dossier", "export", number, "--out", str(out)], env, stdin="")
    assert no_token.returncode == 2 and not out.exists()

    exported = run_cli(
        ["dossier", "export", number, "--out", str(out)], env, stdin=world.supervisor[1] + "\n"
    )
    assert exported.returncode == 0, exported.stderr
    digest = exported.stdout.strip().splitlines()[-1].split(":")[-1]
    verified = run_cli(["dossier", "verify", str(out)], env)  # the registry's own keys dir as the trust
    assert verified.returncode == 0, verified.stderr
    assert digest in verified.stdout
    async with harness.runtime.session_factory() as session:
        actors = {
            json.loads(details)["digest"]: actor
            for actor, details in (
                await session.execute(
                    select(AuditEntry.actor, AuditEntry.details).where(
                        AuditEntry.object_id == clue_id, AuditEntry.action == "clue.dossier_exported"
                    )
                )
            ).all()
        }
    # The CLI's export, and the one produced when the investigator sent the clue on.
    assert actors.pop(digest) == f"staff:{world.supervisor[0]}"
    assert list(actors.values()) == [f"staff:{world.investigator[0]}"]


async def test_national_suite_signs_with_sm2_and_hashes_with_sm3(
    fresh_database_url: str, tmp_path: Path
) -> None:
    async with running_app(tmp_path / "data", fresh_database_url, crypto_suite="national") as harness:
        world = await make_world(harness)
        clue_id, _, _ = await _sent_on_clue(harness, world)
        response = await harness.client.post(
            f"/api/v1/clues/{clue_id}/dossier", headers=auth(world.investigator[1])
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-dossier-hash"].startswith("sm3:")
        key = archive.read_trusted_key(harness.data_dir / "keys" / "audit-signing.national.public.json")
        verified = archive.verify_zip(io.BytesIO(response.content), [key])
        assert verified.hash_algorithm == "sm3" and verified.algorithm == "sm2-sm3"
        changed = _repack(response.content, replace={"dossier.pdf": b"%PDF-1.4 changed"})
        assert (
            _verify_error(changed, [key])
            == "dossier.pdf was changed: its SM3 hash does not match the manifest"
        )


async def test_text_source_and_identity_hook(harness: Harness) -> None:
    """Redaction slots in as another text source; identity enters only through the release hook, and the
    dossier then says so in its manifest, its row and its audit entry."""
    world = await make_world(harness)
    clue_id, _, _ = await _sent_on_clue(harness, world)

    async def redacted(session, *, clue_id, principal, runtime):  # type: ignore[no-untyped-def]
        shown = await masked_texts(session, clue_id=clue_id, principal=principal, runtime=runtime)
        return replace(shown, report="［已删节］" + shown.report[-6:], messages=())

    release = handoff_service.ReleasedIdentity("release-test-1", (("举报人姓名", REPORTER_NAME),))
    async with harness.runtime.session_factory() as session:
        principal = await auth_service.authenticate(session, world.investigator[1])
        plain = await handoff_service.export_dossier(
            session, clue_id=clue_id, principal=principal, runtime=harness.runtime, text_source=redacted
        )
        released = await handoff_service.export_dossier(
            session, clue_id=clue_id, principal=principal, runtime=harness.runtime, released_identity=release
        )
        await session.commit()
        rows = {
            d.digest: d
            for d in (await session.execute(select(Dossier).where(Dossier.clue_id == clue_id))).scalars()
        }
        entries = [
            json.loads(e.details)
            for e in (
                await session.execute(
                    select(AuditEntry).where(
                        AuditEntry.object_id == clue_id, AuditEntry.action == "clue.dossier_exported"
                    )
                )
            ).scalars()
        ]

    def pdf_text(data: bytes) -> str:
        with zipfile.ZipFile(io.BytesIO(data)) as dossier:
            reader = pypdf.PdfReader(io.BytesIO(dossier.read("dossier.pdf")))
            return _strip("".join(page.extract_text() for page in reader.pages))

    def manifest(data: bytes) -> dict:  # type: ignore[type-arg]
        with zipfile.ZipFile(io.BytesIO(data)) as dossier:
            return json.loads(dossier.read("manifest.json"))

    assert "［已删节］" in pdf_text(plain.data) and "［手机号］" not in pdf_text(plain.data)
    assert REPORTER_NAME not in pdf_text(plain.data) and manifest(plain.data)["identity_included"] is False
    assert REPORTER_NAME in pdf_text(released.data)
    assert manifest(released.data)["identity_included"] is True
    assert manifest(released.data)["identity_release_id"] == "release-test-1"
    assert rows[released.digest].identity_included and not rows[plain.digest].identity_included
    by_digest = {e["digest"]: e for e in entries}
    assert by_digest[released.digest]["identity_release_id"] == "release-test-1"
    assert by_digest[plain.digest]["identity_included"] is False
    archive.verify_zip(io.BytesIO(released.data), _trusted(harness))


async def test_a_damaged_file_stops_the_export_and_records_nothing(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id, _, _ = await _sent_on_clue(harness, world)
    async with harness.runtime.session_factory() as session:
        blob_id = await session.scalar(select(Attachment.blob_id).where(Attachment.clue_id == clue_id))
    blob = harness.data_dir / "blobs" / blob_id[:2] / blob_id
    stored = bytearray(blob.read_bytes())
    stored[-20] ^= 0x01
    blob.write_bytes(bytes(stored))
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/dossier", headers=auth(world.investigator[1])
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "attachment_unavailable"
    async with harness.runtime.session_factory() as session:
        # Only the dossier produced with the sending-on, before the damage: nothing more recorded.
        assert len((await session.scalars(select(Dossier.id).where(Dossier.clue_id == clue_id))).all()) == 1
        exported = (
            await session.scalars(
                select(AuditEntry.id).where(
                    AuditEntry.object_id == clue_id, AuditEntry.action == "clue.dossier_exported"
                )
            )
        ).all()
        assert len(exported) == 1
