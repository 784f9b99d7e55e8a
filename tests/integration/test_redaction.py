"""Redaction on both databases, through real HTTP: spans of the report and of a reporter's message covered as
new versions that the onward view and the dossier PDF show (pypdf reads it) while the original stays for
those allowed; a PDF page region's text gone from the file (pdftotext, an independent reader); an image
region covered (pixels) with no metadata left (exiftool); who may redact; bad input refused with nothing
changed; every redaction and unmask request in the audit trail with who and a hash of the sealed why."""

# ruff: noqa: S105, S603, ASYNC221 - names of test secrets; the tests run pdftotext and exiftool on purpose

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import pypdf
import pytest
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlalchemy import func, select

from service.attachments.models import Attachment
from service.audit.models import AuditEntry
from service.auth.models import Staff
from service.custody import service as custody_service
from service.custody.ceremony import Custodian, init_keys
from service.intake import service as intake_service
from service.intake.models import Receipt
from service.platform.crypto.keys import KeyRing, read_public_key
from service.platform.errors import Conflict, Forbidden, Invalid
from service.platform.timeutil import LOCAL
from service.redaction import service as redaction_service
from service.redaction.models import Redaction, UnmaskRequest
from service.redaction.service import MARKER
from tests.helpers.app import Harness, auth, cli_env, run_cli, run_cli_with_passphrases, running_app, unique
from tests.helpers.media import jpeg_with_gps
from tests.helpers.registry import World, make_world, step
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff
from tests.helpers.tools import apt, require_executable
from tests.helpers.web import open_status, post_reply, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPORTER_NAME = "欧阳晓明"
SECRET = "线人代号青松"
SECRET_PDF = "SECRET-ALPHA-7731"
VISIBLE_PDF = "VISIBLE-OMEGA-2290"
IMAGE_SIZE = (120, 80)
IMAGE_REGION = {"page": 1, "x": 10, "y": 20, "width": 40, "height": 30}
# reportlab draws from the bottom-left; the region is from the top-left: the first line's baseline is at
# 842 - 770 = 72 pt from the top, the second's at 242 pt.
PDF_REGION = {"page": 1, "x": 60, "y": 50, "width": 300, "height": 35}


def _strip(text: str) -> str:
    return "".join(text.split())


def _pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setFont("Helvetica", 14)
    page.drawString(72, 770, SECRET_PDF)
    page.drawString(72, 600, VISIBLE_PDF)
    page.save()
    return out.getvalue()


def _pdftotext(data: bytes, tmp_path: Path) -> str:
    tool = require_executable("pdftotext", apt("poppler-utils"))
    source = tmp_path / f"{unique('doc')}.pdf"
    source.write_bytes(data)
    output = subprocess.run([tool, str(source), "-"], check=True, capture_output=True, text=True).stdout
    return _strip(output)  # it spaces out letters by their positions


async def _clue(harness: Harness, world: World, *, files: list[tuple[str, bytes]] = ()) -> str:  # type: ignore[assignment]
    """A real-name web report whose text names the reporter (masked) and an informant (what staff will
    redact), a reply repeating the informant; triaged to the investigator, accepted and sent on."""
    text = f"我叫{REPORTER_NAME}。举报赵某在执行案件中收受好处费，{SECRET}曾在现场看见，此事发生在去年。"
    response = await post_report(
        harness.client,
        {
            "text": text,
            "accused_name": "赵某",
            "accused_unit": world.accused_unit_name,
            "identity": "real_name",
            "contact_name": REPORTER_NAME,
            "contact_phone": "13912345678",
        },
        files=files,
    )
    assert response.status_code == 200, response.text
    page = await open_status(harness.client, receipt_from(response.text))
    reply = await post_reply(harness.client, page.text, f"补充：{SECRET}愿意作证。")
    assert reply.status_code == 200, reply.text
    async with harness.runtime.session_factory() as session:
        clue_id = (
            await session.execute(select(Receipt.clue_id).order_by(Receipt.created_at.desc()))
        ).first()[0]
    sup, inv = world.supervisor[1], world.investigator[1]
    assert (await step(harness, clue_id, sup, "triage")).status_code == 201
    assert (await step(harness, clue_id, inv, "accept")).status_code == 201
    sent = await step(
        harness,
        clue_id,
        inv,
        "send_on",
        kind="organ",
        target="区人民检察院",
        document_number=unique("移"),
        approver_id=world.approver[0],
        decision_on=datetime.now(LOCAL).date().isoformat(),
    )
    assert sent.status_code == 201, sent.text
    return clue_id


async def _dossier(harness: Harness, clue_id: str, token: str) -> dict[str, bytes]:
    response = await harness.client.post(f"/api/v1/clues/{clue_id}/dossier", headers=auth(token))
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as dossier:
        return {name: dossier.read(name) for name in dossier.namelist()}


def _pdf_text(data: bytes) -> str:
    return _strip("".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages))


async def _audit(harness: Harness, clue_id: str, action: str) -> list[AuditEntry]:
    async with harness.runtime.session_factory() as session:
        rows = await session.execute(
            select(AuditEntry).where(AuditEntry.object_id == clue_id, AuditEntry.action == action)
        )
        return list(rows.scalars())


async def _counts(harness: Harness, clue_id: str) -> tuple[int, int, int]:
    async with harness.runtime.session_factory() as session:
        versions = await session.scalar(
            select(func.count()).select_from(Redaction).where(Redaction.clue_id == clue_id)
        )
        requests = await session.scalar(
            select(func.count()).select_from(UnmaskRequest).where(UnmaskRequest.clue_id == clue_id)
        )
        entries = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.object_id == clue_id,
                AuditEntry.action.in_(("clue.redacted", "clue.unmask_requested", "clue.unmasked")),
            )
        )
        return int(versions or 0), int(requests or 0), int(entries or 0)


async def test_redacted_spans_go_onward_and_the_original_stays(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id = await _clue(harness, world)
    inv, sup = world.investigator[1], world.supervisor[1]
    clue = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(inv))).json()
    masked = clue["text"]
    assert REPORTER_NAME not in masked and "［姓名］" in masked and SECRET in masked
    start = masked.index(SECRET)

    # The report: by offsets in the text the investigator sees.
    first = await harness.client.post(
        f"/api/v1/clues/{clue_id}/redactions/texts",
        headers=auth(inv),
        json={
            "target": "report",
            "base_version": 0,
            "spans": [[start, start + len(SECRET)]],
            "reason": "保护证人：线人代号可识别其身份",
        },
    )
    assert first.status_code == 201, first.text
    version = first.json()
    assert version["version"] == 1 and version["action"] == "redact"
    assert SECRET not in version["text"] and MARKER in version["text"]
    assert version["text"] == masked[:start] + MARKER + masked[start + len(SECRET) :]

    # A reporter's message: by quoting the passage (every occurrence).
    messages = (await harness.client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(inv))).json()
    reply = next(m for m in messages if SECRET in m["text"])
    second = await harness.client.post(
        f"/api/v1/clues/{clue_id}/redactions/texts",
        headers=auth(sup),
        json={
            "target": "message",
            "target_id": reply["id"],
            "base_version": 0,
            "quotes": [SECRET],
            "reason": "同上，留言中也出现",
        },
    )
    assert second.status_code == 201, second.text
    assert SECRET not in second.json()["text"]

    # What goes onward: the redacted view and the dossier PDF (as pypdf reads it).
    shown = (await harness.client.get(f"/api/v1/clues/{clue_id}/redacted", headers=auth(inv))).json()
    assert SECRET not in json.dumps(shown, ensure_ascii=False)
    assert MARKER in shown["report"] and "好处费" in shown["report"]
    assert any(MARKER in m["text"] for m in shown["messages"])
    pdf_text = _pdf_text((await _dossier(harness, clue_id, inv))["dossier.pdf"])
    assert _strip(SECRET) not in pdf_text and "青松" not in pdf_text
    assert _strip(MARKER) in pdf_text and "收受好处费" in pdf_text

    # The original stays, for those who could read it before.
    again = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(inv))).json()
    assert again["text"] == masked
    thread = (await harness.client.get(f"/api/v1/clues/{clue_id}/messages", headers=auth(sup))).json()
    assert any(SECRET in m["text"] for m in thread)
    assert (
        await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(world.other_investigator[1]))
    ).status_code == 404

    # A second redaction builds on the first; the versions are listed with who and why.
    later = await harness.client.post(
        f"/api/v1/clues/{clue_id}/redactions/texts",
        headers=auth(inv),
        json={"target": "report", "base_version": 1, "quotes": ["去年"], "reason": "时间可推断证人"},
    )
    assert later.status_code == 201, later.text
    assert later.json()["version"] == 2 and SECRET not in later.json()["text"]
    assert "去年" not in later.json()["text"]
    listed = (await harness.client.get(f"/api/v1/clues/{clue_id}/redactions", headers=auth(sup))).json()
    assert [(v["target"], v["version"]) for v in listed] == [("report", 1), ("message", 1), ("report", 2)]
    assert listed[0]["reason"] == "保护证人：线人代号可识别其身份"
    assert listed[0]["created_by"] == f"staff:{world.investigator[0]}"
    assert listed[1]["created_by"] == f"staff:{world.supervisor[0]}"

    # Every redaction is audited: who, which version, and the sealed reason tied to the chain.
    entries = await _audit(harness, clue_id, "clue.redacted")
    assert len(entries) == 3
    async with harness.runtime.session_factory() as session:
        rows = {r.id: r for r in (await session.execute(select(Redaction))).scalars() if r.clue_id == clue_id}
    for entry in entries:
        details = json.loads(entry.details)
        row = rows[details["redaction_id"]]
        assert entry.actor == row.created_by
        assert details["reason_sha256"] == hashlib.sha256(row.reason).hexdigest()
        assert SECRET.encode() not in row.content and SECRET.encode() not in row.reason  # sealed
    assert len(await _audit(harness, clue_id, "clue.redactions_read")) == 1


async def test_pdf_and_image_regions_are_covered_for_real(harness: Harness, tmp_path: Path) -> None:
    world = await make_world(harness)
    photo = jpeg_with_gps(size=IMAGE_SIZE, artist="Zhang San")
    clue_id = await _clue(harness, world, files=[("材料.pdf", _pdf()), ("照片.jpg", photo)])
    inv = world.investigator[1]
    async with harness.runtime.session_factory() as session:
        attachments = {
            a.kind: a.id
            for a in (
                await session.execute(select(Attachment).where(Attachment.clue_id == clue_id))
            ).scalars()
        }
    pdf_id, image_id = attachments["application/pdf"], attachments["image/jpeg"]
    original_pdf = (await harness.client.get(f"/api/v1/attachments/{pdf_id}", headers=auth(inv))).content
    assert SECRET_PDF in _pdftotext(original_pdf, tmp_path)  # the cleaned file still has it

    covered = await harness.client.post(
        f"/api/v1/attachments/{pdf_id}/redactions",
        headers=auth(inv),
        json={"base_version": 0, "regions": [PDF_REGION], "reason": "遮盖证人编号"},
    )
    assert covered.status_code == 201, covered.text
    version_pdf = await harness.client.get(
        f"/api/v1/redactions/{covered.json()['id']}/file", headers=auth(inv)
    )
    assert version_pdf.status_code == 200
    text = _pdftotext(version_pdf.content, tmp_path)
    assert SECRET_PDF not in text and "7731" not in text and VISIBLE_PDF in text
    assert SECRET_PDF.encode() not in version_pdf.content

    image = await harness.client.post(
        f"/api/v1/attachments/{image_id}/redactions",
        headers=auth(inv),
        json={"base_version": 0, "regions": [IMAGE_REGION], "reason": "遮盖车牌"},
    )
    assert image.status_code == 201, image.text
    picture = (
        await harness.client.get(f"/api/v1/redactions/{image.json()['id']}/file", headers=auth(inv))
    ).content
    with Image.open(io.BytesIO(picture)) as opened:
        assert opened.format == "JPEG" and opened.size == IMAGE_SIZE
        pixels = opened.convert("RGB")
        x, y, w, h = (IMAGE_REGION[k] for k in ("x", "y", "width", "height"))
        # Covered: black, edge to edge (JPEG re-encoding may tint the outermost pixel row a little).
        for px in range(x + 1, x + w - 1):
            for py in range(y + 1, y + h - 1):
                assert max(pixels.getpixel((px, py))) < 40, (px, py)
        for px, py in ((x - 3, y), (x + w + 3, y + h + 3), (110, 5)):
            red, green, blue = pixels.getpixel((px, py))
            assert red > 150 and green < 60 and blue < 60, (px, py)  # left alone: the photo's red
    exiftool = require_executable("exiftool", apt("libimage-exiftool-perl"))
    saved = tmp_path / "covered.jpg"
    saved.write_bytes(picture)
    tags = json.loads(
        subprocess.run([exiftool, "-j", "-G1", "-a", str(saved)], check=True, capture_output=True).stdout
    )[0]
    groups = {key.split(":")[0] for key in tags if ":" in key}
    assert groups <= {"ExifTool", "System", "File", "JFIF", "Composite"}, groups  # no EXIF, GPS, XMP, ICC…
    assert "Zhang San" not in json.dumps(tags) and not any("GPS" in key for key in tags)

    # The dossier carries the covered versions, and the originals are still there for those allowed.
    members = await _dossier(harness, clue_id, inv)
    files = {name: body for name, body in members.items() if name.startswith("files/")}
    pdfs = [body for name, body in files.items() if name.endswith(".pdf")]
    jpegs = [body for name, body in files.items() if name.endswith(".jpg")]
    assert len(pdfs) == 1 and len(jpegs) == 1
    assert SECRET_PDF not in _pdftotext(pdfs[0], tmp_path) and jpegs[0] == picture
    again = (await harness.client.get(f"/api/v1/attachments/{pdf_id}", headers=auth(inv))).content
    assert SECRET_PDF in _pdftotext(again, tmp_path)
    assert len(await _audit(harness, clue_id, "clue.redacted")) == 2


async def test_refused_and_invalid_redactions_change_nothing(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id = await _clue(harness, world, files=[("照片.jpg", jpeg_with_gps(size=IMAGE_SIZE))])
    inv = world.investigator[1]
    masked = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(inv))).json()["text"]
    async with harness.runtime.session_factory() as session:
        image_id = await session.scalar(select(Attachment.id).where(Attachment.clue_id == clue_id))
    url = f"/api/v1/clues/{clue_id}/redactions/texts"
    good = {"target": "report", "base_version": 0, "spans": [[0, 2]], "reason": "理由"}
    before = await _counts(harness, clue_id)

    # Who: another unit's investigator does not see the clue; an operator's or admin's role may not.
    assert (
        await harness.client.post(url, headers=auth(world.other_investigator[1]), json=good)
    ).status_code == 404
    assert (await harness.client.post(url, headers=auth(world.operator[1]), json=good)).status_code == 403
    assert (await harness.client.post(url, headers=auth(world.admin[1]), json=good)).status_code == 403
    assert (await harness.client.post(url, json=good)).status_code == 401
    region = {"base_version": 0, "regions": [IMAGE_REGION], "reason": "理由"}
    other = await harness.client.post(
        f"/api/v1/attachments/{image_id}/redactions", headers=auth(world.other_investigator[1]), json=region
    )
    assert other.status_code == 404

    # What: each refused with a message naming the problem.
    bad = [
        ({**good, "spans": [[0, len(masked) + 1]]}, 422, "outside the text"),
        ({**good, "spans": [[5, 5]]}, 422, "outside the text"),
        ({**good, "reason": "   "}, 422, "reason"),
        ({**good, "reason": ""}, 422, "reason"),
        ({**good, "quotes": ["这段话不在文中"], "spans": []}, 422, "does not occur"),
        ({**good, "spans": []}, 422, "at least one span"),
        ({**good, "base_version": 3}, 409, "latest version is 0"),
        ({**good, "target": "message", "target_id": "nope"}, 404, "no such text"),
    ]
    for body, status, words in bad:
        response = await harness.client.post(url, headers=auth(inv), json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.text, (words, response.text)
    file_url = f"/api/v1/attachments/{image_id}/redactions"
    for regions, words in (
        ([{**IMAGE_REGION, "x": IMAGE_SIZE[0] - 5}], "outside its page"),
        ([{**IMAGE_REGION, "page": 2}], "outside its page"),
        ([{**IMAGE_REGION, "width": 0}], "width"),
    ):
        response = await harness.client.post(file_url, headers=auth(inv), json={**region, "regions": regions})
        assert response.status_code == 422, response.text
        assert words in response.text
    assert (
        await harness.client.post(file_url, headers=auth(inv), json={**region, "reason": " "})
    ).status_code == 422
    assert await _counts(harness, clue_id) == before
    assert (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(inv))).json()["text"] == masked


async def test_unmask_is_requested_by_a_supervisor_and_audited(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id = await _clue(harness, world)
    inv, sup = world.investigator[1], world.supervisor[1]
    masked = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(sup))).json()["text"]
    start = masked.index("［姓名］")
    url = f"/api/v1/clues/{clue_id}/unmask-requests"
    body = {
        "target": "report",
        "base_version": 0,
        "start": start,
        "end": start + len("［姓名］"),
        "reason": "被遮盖的是被举报人姓名",
    }
    before = await _counts(harness, clue_id)
    assert (await harness.client.post(url, headers=auth(inv), json=body)).status_code == 403
    not_marker = await harness.client.post(url, headers=auth(sup), json={**body, "start": 0, "end": 2})
    assert not_marker.status_code == 422 and "masking marker" in not_marker.text
    assert await _counts(harness, clue_id) == before

    made = await harness.client.post(url, headers=auth(sup), json=body)
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending" and made.json()["redaction_id"] is None
    assert REPORTER_NAME not in made.text
    listed = (await harness.client.get(url, headers=auth(inv))).json()
    assert [r["id"] for r in listed] == [made.json()["id"]] and listed[0]["reason"] == body["reason"]
    (entry,) = await _audit(harness, clue_id, "clue.unmask_requested")
    details = json.loads(entry.details)
    assert entry.actor == f"staff:{world.supervisor[0]}" and details["marker"] == "［姓名］"
    # Nothing was revealed: the text staff see is unchanged.
    assert (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(sup))).json()["text"] == masked


PASSPHRASES = {"a": "correct horse battery A", "b": "correct horse battery B"}


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    keys_dir, custody_dir = tmp_path_factory.mktemp("keys"), tmp_path_factory.mktemp("custody")
    names = {k: unique(f"保管人{k}") for k in PASSPHRASES}
    init_keys(
        keys_dir=keys_dir,
        custody_dir=custody_dir,
        suite="international",
        custodians=[Custodian(names[k], PASSPHRASES[k]) for k in PASSPHRASES],
        threshold=2,
    )
    return keys_dir, custody_dir, names


async def test_unmask_reveals_only_that_span_with_custodians_shares(  # type: ignore[no-untyped-def]
    harness: Harness, ceremony, monkeypatch
) -> None:
    """A middleman's phone number masked as if it were the reporter's: a supervisor asks, two custodians'
    shares apply it; the new version shows that number and nothing else the masking hid."""
    keys_dir, custody_dir, names = ceremony
    base = harness.runtime.keys
    ring = KeyRing(
        case_public=base.case_public,
        identity_public=read_public_key(keys_dir / "identity.public.json"),
        contact_public=read_public_key(keys_dir / "contact.public.json"),
        private=base._private.values(),
    )
    async with harness.runtime.session_factory() as session:
        existing = set((await session.execute(select(Staff.name))).scalars())
    for name in names.values():
        if name not in existing:
            await harness.add_staff(name, ["custodian"])
    supervisor_id, sup = await harness.add_staff(unique("督办"), ["supervisor"])
    runtime = dataclasses.replace(harness.runtime, keys=ring)
    # The staff server seals the unmask request's context to the ceremony's identity key, as deployed.
    monkeypatch.setattr(harness.runtime, "keys", ring)
    middleman = "13900000002"
    tip = await runtime.intake.submit(
        intake_service.Submission(
            text=f"派出所民警收了红包以后压着案子不立案，我叫王举报。中间人的电话是{middleman}，他负责收钱。",
            channel="web",
            anonymous=False,
            accused={"name": "李某"},
            submitter={"name": "王举报", "phone": "13900000001"},
        ),
        actor="public",
    )
    clue_id = tip.clue_id
    masked = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(sup))).json()["text"]
    assert middleman not in masked and "王举报" not in masked and "［手机号］" in masked
    # A redaction first, so the marker has moved by the time it is unmasked.
    first = await harness.client.post(
        f"/api/v1/clues/{clue_id}/redactions/texts",
        headers=auth(sup),
        json={"target": "report", "base_version": 0, "quotes": ["红包"], "reason": "细节另行移交"},
    )
    assert first.status_code == 201, first.text
    text = first.json()["text"]
    start = text.index("［手机号］")
    request = await harness.client.post(
        f"/api/v1/clues/{clue_id}/unmask-requests",
        headers=auth(sup),
        json={
            "target": "report",
            "base_version": 1,
            "start": start,
            "end": start + len("［手机号］"),
            "reason": "被遮盖的是中间人的电话，不是举报人的",
        },
    )
    assert request.status_code == 201, request.text
    request_id = request.json()["id"]

    def share(who: str) -> custody_service.ShareInput:
        (path,) = custody_dir.glob(f"identity-*.{names[who]}.share.json")
        return custody_service.ShareInput(path, PASSPHRASES[who])

    factory = harness.runtime.session_factory
    refusals = [
        (names["a"], [share("a")], Invalid),  # one custodian's share is not enough
        (names["a"], [share("a"), share("a")], Invalid),  # nor the same one twice
        (supervisor_id, [share("a"), share("b")], Forbidden),  # the requester is no custodian
    ]
    for custodian, shares, error in refusals:
        async with factory() as session:
            with pytest.raises(error):
                await redaction_service.apply_unmask(
                    session, request_id=request_id, custodian=custodian, shares=shares, keys=ring
                )
    assert await _counts(harness, clue_id) == (1, 1, 2)  # the redaction, the request and their entries

    async with factory() as session:
        version = await redaction_service.apply_unmask(
            session, request_id=request_id, custodian=names["a"], shares=[share("a"), share("b")], keys=ring
        )
        await session.commit()
    assert version.action == "unmask" and version.version == 2
    assert version.text == text[:start] + middleman + text[start + len("［手机号］") :]
    shown = (await harness.client.get(f"/api/v1/clues/{clue_id}/redacted", headers=auth(sup))).json()
    assert middleman in shown["report"] and "［姓名］" in shown["report"] and "王举报" not in shown["report"]
    assert "红包" not in shown["report"]
    listed = (await harness.client.get(f"/api/v1/clues/{clue_id}/unmask-requests", headers=auth(sup))).json()
    assert listed[0]["status"] == "applied" and listed[0]["redaction_id"] == version.id
    (read,) = await _audit(harness, clue_id, "clue.unmask_requests_read")  # reasons were opened: audited
    assert json.loads(read.details) == {"request_ids": [listed[0]["id"]]}
    (entry,) = await _audit(harness, clue_id, "clue.unmasked")
    details = json.loads(entry.details)
    async with factory() as session:
        custodians = {
            s.id
            for s in (await session.execute(select(Staff).where(Staff.name.in_(names.values())))).scalars()
        }
    assert set(details["share_holders"]) == custodians and details["requested_by"] == f"staff:{supervisor_id}"
    async with factory() as session:
        with pytest.raises(Conflict):  # applied once
            await redaction_service.apply_unmask(
                session,
                request_id=request_id,
                custodian=names["b"],
                shares=[share("a"), share("b")],
                keys=ring,
            )


async def test_staff_site_forms_work_without_javascript(harness: Harness) -> None:
    world = await make_world(harness)
    supervisor = await make_web_staff(harness, ["supervisor"])  # before the clue: its key is wrapped to them
    clue_id = await _clue(harness, world, files=[("照片.jpg", jpeg_with_gps(size=IMAGE_SIZE))])
    async with harness.runtime.session_factory() as session:
        image_id = await session.scalar(select(Attachment.id).where(Attachment.clue_id == clue_id))
    page_url = f"/staff/registry/clues/{clue_id}"

    def redacted_report(html: str) -> str:
        match = re.search(r'id="redacted-report">(.*?)</p>', html, re.S)
        assert match, "no redacted report on the page"
        return match.group(1)

    async with log_in(harness, supervisor) as browser:
        page = await browser.get(page_url)
        assert page.status_code == 200 and 'id="redaction"' in page.text
        assert SECRET in redacted_report(page.text)
        assert f'value="report|{clue_id}||0"' in page.text

        # A bad form is shown again with the message; nothing changes.
        refused = await browser.post(
            f"{page_url}/redactions/text",
            data={
                "csrf_token": csrf_of(page.text),
                "target": f"report|{clue_id}||0",
                "quotes": SECRET,
                "reason": " ",
            },
        )
        assert refused.status_code == 422 and "请填写理由" in refused.text
        assert SECRET in redacted_report(refused.text)

        done = await browser.post(
            f"{page_url}/redactions/text",
            data={
                "csrf_token": csrf_of(page.text),
                "target": f"report|{clue_id}||0",
                "quotes": SECRET,
                "reason": "保护证人",
            },
        )
        assert done.status_code == 303, done.text
        page = await browser.get(page_url)
        assert SECRET not in redacted_report(page.text) and MARKER in redacted_report(page.text)
        assert SECRET in page.text.split('id="redaction"')[0]  # the original, for those who could read it
        assert "保护证人" in page.text and f'value="report|{clue_id}||1"' in page.text

        outside = await browser.post(
            f"{page_url}/redactions/file",
            data={
                "csrf_token": csrf_of(page.text),
                "file": f"{image_id}|0",
                "page": "1",
                "x": "100",
                "y": "0",
                "width": "50",
                "height": "10",
                "reason": "遮盖",
            },
        )
        assert outside.status_code == 422 and "超出页面范围" in outside.text
        covered = await browser.post(
            f"{page_url}/redactions/file",
            data={
                "csrf_token": csrf_of(page.text),
                "file": f"{image_id}|0",
                "page": "1",
                "x": "10",
                "y": "20",
                "width": "40",
                "height": "30",
                "reason": "遮盖车牌",
            },
        )
        assert covered.status_code == 303, covered.text

        text = redacted_report(page.text)
        start = text.index("［姓名］")
        unmask = await browser.post(
            f"{page_url}/unmask-requests",
            data={
                "csrf_token": csrf_of(page.text),
                "target": f"report|{clue_id}||1",
                "start": str(start),
                "end": str(start + len("［姓名］")),
                "reason": "核实为被反映人姓名",
            },
        )
        assert unmask.status_code == 303, unmask.text
        page = await browser.get(page_url)
        assert "遮盖车牌" in page.text and "待保管人执行" in page.text
        link = re.search(r'href="(/staff/registry/redactions/[^"]+/file)"', page.text)
        assert link
        picture = await browser.get(link.group(1))
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert await _counts(harness, clue_id) == (2, 1, 3)

    outsider = await make_web_staff(harness, ["investigator"], world.other_unit)
    async with log_in(harness, outsider) as browser:
        assert (await browser.get(page_url)).status_code == 404


async def test_unmask_by_the_custodial_command_line(tmp_path: Path, fresh_database_url: str) -> None:
    """`tipline custody unmask`: two custodians' passphrases on a pipe; the command prints no revealed words,
    a wrong passphrase changes nothing and is audited on its own."""
    env = cli_env(tmp_path, fresh_database_url)
    assert run_cli(["db", "upgrade"], env).returncode == 0
    a, b = unique("甲"), unique("乙")
    for name in (a, b):
        assert run_cli(["staff", "add", "--name", name, "--role", "custodian"], env).returncode == 0
    phrases = ["first passphrase 111", "second passphrase 222"]
    made = run_cli_with_passphrases(
        ["keys", "init", "--custodian", a, "--custodian", b, "--threshold", "2"], env, phrases
    )
    assert made.returncode == 0, made.stderr
    middleman = "13700000002"
    async with running_app(tmp_path, fresh_database_url) as harness:
        _, sup = await harness.add_staff(unique("科长"), ["supervisor"])
        body = {
            "text": f"看守所民警收钱帮人办保外就医，我叫赵实名。中间人的电话是{middleman}。",
            "anonymous": False,
            "submitter": {"name": "赵实名", "phone": "13700000000"},
        }
        assert (await harness.client.post("/api/v1/tips", json=body)).status_code == 201
        async with harness.runtime.session_factory() as session:
            clue_id = (await session.execute(select(Receipt.clue_id))).scalar_one()
        text = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(sup))).json()["text"]
        start = text.index("［手机号］")
        made = await harness.client.post(
            f"/api/v1/clues/{clue_id}/unmask-requests",
            headers=auth(sup),
            json={
                "target": "report",
                "base_version": 0,
                "start": start,
                "end": start + 5,
                "reason": "中间人电话",
            },
        )
        assert made.status_code == 201, made.text
        request_id = made.json()["id"]
    share = {n: next((tmp_path / "custody").glob(f"identity-*.{n}.share.json")) for n in (a, b)}
    command = ["custody", "unmask", request_id, "--as", a, "--share", str(share[a]), "--share", str(share[b])]
    wrong = run_cli_with_passphrases(command, env, [phrases[0], "not the right one!!"])
    assert wrong.returncode == 1 and middleman not in wrong.stdout + wrong.stderr
    applied = run_cli_with_passphrases(command, env, phrases)
    assert applied.returncode == 0, applied.stderr
    assert (
        "version 1" in applied.stdout and middleman not in applied.stdout and "赵实名" not in applied.stdout
    )
    async with running_app(tmp_path, fresh_database_url) as harness:
        shown = (await harness.client.get(f"/api/v1/clues/{clue_id}/redacted", headers=auth(sup))).json()
        assert (
            middleman in shown["report"] and "赵实名" not in shown["report"] and "［姓名］" in shown["report"]
        )
        async with harness.runtime.session_factory() as session:
            actions = set((await session.execute(select(AuditEntry.action))).scalars())
    assert {"clue.unmask_requested", "custody.unmask_failed", "clue.unmasked"} <= actions
