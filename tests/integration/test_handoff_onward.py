"""What goes onward with a hand-off, on both databases, through real HTTP: a hotline caller's later additions
and corrections in the onward view and the dossier (PDF section and manifest), redacted where redacted; the
accused person's details redacted like the report text; identity in a dossier only through a custody
release that names the hand-off and the fields (two people, custodians' shares, audited), checked with
pdftotext and a byte search of every ZIP member; `tipline dossier verify` passes for each new dossier;
the staff page's file redaction form covering several regions in one version without JavaScript."""

# ruff: noqa: S603, ASYNC221 - the tests run pdftotext and the tipline command line on purpose

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from service.attachments.models import Attachment
from service.audit.models import AuditEntry
from service.auth import service as auth_service
from service.auth.models import Staff
from service.custody import service as custody_service
from service.custody.ceremony import Custodian, init_keys
from service.custody.models import CustodyRequest
from service.handoff import service as handoff_service
from service.handoff.models import Dossier
from service.intake import assisted
from service.intake import service as intake_service
from service.intake.models import Receipt
from service.platform.crypto.keys import KeyRing, read_public_key
from service.platform.errors import Conflict, Forbidden, Invalid, NotFound
from service.platform.timeutil import LOCAL
from service.redaction.models import Redaction
from service.redaction.service import MARKER
from service.registry import recusal
from service.registry.models import ClueTransfer
from tests.helpers.app import Harness, auth, cli_env, run_cli, run_cli_with_passphrases, running_app, unique
from tests.helpers.media import jpeg_with_gps
from tests.helpers.registry import World, make_world, step
from tests.helpers.staff_web import csrf_of, log_in, make_web_staff
from tests.helpers.tools import apt, missing, require_executable
from tests.helpers.web import clue_of_receipt, post_report, receipt_from

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPORTER_NAME = "欧阳晓明"
PHONE = "13912345678"
WITNESS = "证人代号白杨"
CORRECTION = "时间应为前年八月"
ACCUSED_NAME = "钱某某"
ACCUSED_POSITION = "执行局副局长"
PASSPHRASES = {"a": "correct horse battery A", "b": "correct horse battery B"}


def _strip(text: str) -> str:
    return "".join(text.split())


def _pdftotext(data: bytes, tmp_path: Path) -> str:
    tool = require_executable("pdftotext", apt("poppler-utils"))
    source = tmp_path / f"{unique('doc')}.pdf"
    source.write_bytes(data)
    done = subprocess.run([tool, str(source), "-"], check=True, capture_output=True, text=True)
    if "Missing language pack" in done.stderr:  # the dossier's Chinese font needs Poppler's CMaps
        missing("Poppler's Adobe-GB1 CMaps (pdftotext reads no Chinese without them)", apt("poppler-data"))
    return _strip(done.stdout)


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as dossier:
        return {name: dossier.read(name) for name in dossier.namelist()}


def _verify_by_cli(harness: Harness, data: bytes, tmp_path: Path) -> str:
    """`tipline dossier verify` on the ZIP with the registry's public signing key, as the receiver runs it."""
    path = tmp_path / f"{unique('dossier')}.zip"
    path.write_bytes(data)
    key = harness.data_dir / "keys" / "audit-signing.public.json"
    checked = run_cli(
        ["dossier", "verify", str(path), "--trusted-key", str(key)],
        cli_env(harness.data_dir, harness.database_url),
    )
    assert checked.returncode == 0, checked.stderr
    return checked.stdout


def _no_identity(data: bytes, tmp_path: Path, secrets: tuple[str, ...]) -> None:
    members = _members(data)
    pdf_text = _pdftotext(members["dossier.pdf"], tmp_path)
    for secret in secrets:
        assert _strip(secret) not in pdf_text, secret
        for encoding in ("utf-8", "utf-16-be", "gb18030"):
            needle = secret.encode(encoding)
            assert needle not in data, (secret, encoding)
            for name, body in members.items():
                assert needle not in body, (secret, name, encoding)


async def _send_on(harness: Harness, world: World, clue_id: str) -> None:
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


async def _transfer_id(harness: Harness, clue_id: str) -> str:
    async with harness.runtime.session_factory() as session:
        return await session.scalar(
            select(ClueTransfer.id).where(ClueTransfer.clue_id == clue_id, ClueTransfer.kind == "organ")
        )


async def test_additions_and_accused_go_onward_redacted(harness: Harness, tmp_path: Path) -> None:
    world = await make_world(harness)
    inv = world.investigator[1]
    response = await post_report(
        harness.client,
        {
            "text": f"我叫{REPORTER_NAME}。举报执行局领导在执行案件中收受好处费，此事发生在去年。",
            "accused_name": ACCUSED_NAME,
            "accused_unit": world.accused_unit_name,
            "accused_position": ACCUSED_POSITION,
            "identity": "real_name",
            "contact_name": REPORTER_NAME,
            "contact_phone": PHONE,
        },
    )
    assert response.status_code == 200, response.text
    code = receipt_from(response.text)
    clue_id = await clue_of_receipt(harness, code)
    # The caller phones again with the code: an operator adds what they say (their number masked at intake);
    # later, on the status page, they correct the record.
    added = await harness.client.post(
        "/api/v1/hotline/additions",
        headers=auth(world.operator[1]),
        json={"receipt": code, "text": f"{WITNESS}当时也在场，可以打我电话{PHONE}。"},
    )
    assert added.status_code == 201, added.text
    addition_id = added.json()["addition_id"]
    async with harness.runtime.session_factory() as session:
        await assisted.record_caller_confirmation(
            session, clue_id, False, CORRECTION, runtime=harness.runtime
        )
        await session.commit()
    await _send_on(harness, world, clue_id)

    shown = (await harness.client.get(f"/api/v1/clues/{clue_id}/redacted", headers=auth(inv))).json()
    kinds = [a["kind"] for a in shown["additions"]]
    assert kinds == ["operator_addition", "caller_confirmation"], shown["additions"]
    assert WITNESS in shown["additions"][0]["fields"]["text"] and PHONE not in json.dumps(shown)
    assert shown["additions"][1] == {
        **shown["additions"][1],
        "confirmed": False,
        "fields": {"correction": CORRECTION},
    }
    assert shown["accused"]["name"] == ACCUSED_NAME

    url = f"/api/v1/clues/{clue_id}/redactions/texts"
    bad_field = await harness.client.post(
        url,
        headers=auth(inv),
        json={
            "target": "accused",
            "field": "salary",
            "base_version": 0,
            "quotes": [ACCUSED_NAME],
            "reason": "保护",
        },
    )
    assert bad_field.status_code == 422 and "被反映人" in bad_field.json()["error"]["message"]
    for body in (
        {"target": "addition", "target_id": addition_id, "field": "text", "quotes": [WITNESS]},
        {"target": "accused", "field": "name", "quotes": [ACCUSED_NAME]},
        {"target": "accused", "field": "position", "spans": [[0, len(ACCUSED_POSITION)]]},
    ):
        made = await harness.client.post(
            url, headers=auth(inv), json={**body, "base_version": 0, "reason": "移交前遮盖"}
        )
        assert made.status_code == 201, made.text
        assert made.json()["version"] == 1 and MARKER in made.json()["text"]
    unmask = await harness.client.post(
        f"/api/v1/clues/{clue_id}/unmask-requests",
        headers=auth(world.supervisor[1]),
        json={
            "target": "accused",
            "field": "name",
            "base_version": 1,
            "start": 0,
            "end": 5,
            "reason": "核对",
        },
    )
    assert unmask.status_code == 422, unmask.text

    # The onward view and the dossier show the redacted versions; the stored ones are unchanged.
    shown = (await harness.client.get(f"/api/v1/clues/{clue_id}/redacted", headers=auth(inv))).json()
    assert WITNESS not in json.dumps(shown, ensure_ascii=False)
    assert MARKER in shown["additions"][0]["fields"]["text"]
    assert shown["accused"]["name"] == MARKER and shown["accused"]["position"] == MARKER
    assert shown["accused"]["unit"] == world.accused_unit_name
    read = (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(inv))).json()
    assert read["accused"]["name"] == ACCUSED_NAME

    exported = await harness.client.post(f"/api/v1/clues/{clue_id}/dossier", headers=auth(inv))
    assert exported.status_code == 200, exported.text
    members = _members(exported.content)
    pdf_text = _pdftotext(members["dossier.pdf"], tmp_path)
    assert "来电补充与更正" in pdf_text and MARKER in pdf_text and _strip(CORRECTION) in pdf_text
    assert "可以打我电话［手机号］" in pdf_text
    for secret in (WITNESS, ACCUSED_NAME, ACCUSED_POSITION, PHONE, REPORTER_NAME):
        assert secret not in pdf_text
        assert secret.encode() not in exported.content
    manifest = json.loads(members["manifest.json"])
    assert [a["kind"] for a in manifest["additions"]] == ["operator_addition", "caller_confirmation"]
    assert (
        manifest["additions"][0]["id"] == addition_id and MARKER in manifest["additions"][0]["fields"]["text"]
    )
    assert manifest["additions"][1]["fields"] == {"correction": CORRECTION}
    assert manifest["additions"][1]["confirmed"] is False
    assert manifest["identity_included"] is False and manifest["identity_release_id"] is None
    assert "dossier intact" in _verify_by_cli(harness, exported.content, tmp_path)


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


async def test_identity_enters_a_dossier_only_through_a_custody_release(  # type: ignore[no-untyped-def]
    harness: Harness, ceremony, monkeypatch, tmp_path: Path
) -> None:
    keys_dir, custody_dir, names = ceremony
    base = harness.runtime.keys
    ring = KeyRing(
        case_public=base.case_public,
        identity_public=read_public_key(keys_dir / "identity.public.json"),
        contact_public=read_public_key(keys_dir / "contact.public.json"),
        private=base._private.values(),
    )
    async with harness.runtime.session_factory() as session:
        existing = {n: i for n, i in (await session.execute(select(Staff.name, Staff.id))).all()}
    ids = {}
    for key, name in names.items():
        ids[key] = existing[name] if name in existing else (await harness.add_staff(name, ["custodian"]))[0]
    world = await make_world(harness)
    # Intake seals the identity to the ceremony's identity key, as deployed.
    monkeypatch.setattr(harness.runtime, "keys", ring)
    runtime = dataclasses.replace(harness.runtime, keys=ring)
    tip = await runtime.intake.submit(
        intake_service.Submission(
            text="执行局干警收了好处费以后把查封的厂房低价拍给了关系人。",
            channel="web",
            anonymous=False,
            accused={"name": "孙某", "unit": world.accused_unit_name},
            submitter={"name": REPORTER_NAME, "phone": PHONE},
        ),
        actor="public",
    )
    clue_id = tip.clue_id
    await _send_on(harness, world, clue_id)
    transfer_id = await _transfer_id(harness, clue_id)

    # Without a release: no identity anywhere in the dossier.
    plain = await harness.client.post(f"/api/v1/clues/{clue_id}/dossier", headers=auth(world.investigator[1]))
    assert plain.status_code == 200, plain.text
    _no_identity(plain.content, tmp_path, (REPORTER_NAME, PHONE))
    assert json.loads(_members(plain.content)["manifest.json"])["identity_included"] is False

    def share(who: str) -> custody_service.ShareInput:
        (path,) = custody_dir.glob(f"identity-*.{names[who]}.share.json")
        return custody_service.ShareInput(path, PASSPHRASES[who])

    async def refused(error: type[Exception], work) -> None:  # type: ignore[no-untyped-def]
        async with harness.runtime.session_factory() as session:
            with pytest.raises(error):
                await work(session)
            await session.rollback()

    def request(fields: list[str], transfer: str | None = transfer_id):  # type: ignore[no-untyped-def]
        return lambda session: custody_service.request_release(
            session,
            clue_id=clue_id,
            requester=names["a"],
            reason="移送检察机关须附举报人姓名和电话",
            kind="dossier",
            keys=ring,
            words_key=harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL),
            transfer_id=transfer,
            fields=fields,
        )

    await refused(Invalid, request([]))  # which fields: the request must say
    await refused(Invalid, request(["name", "salary"]))
    await refused(Invalid, request(["name"], transfer=None))  # which hand-off: the request must say
    async with harness.runtime.session_factory() as session:
        row = await request(["name", "phone"])(session)
        await session.commit()
        request_id = row.id
    assert row.fields == "name,phone" and row.transfer_id == transfer_id

    async def release(session, receiver: str = names["a"], shares=None, token: str = world.investigator[1]):  # type: ignore[no-untyped-def]
        principal = await auth_service.authenticate(session, token)
        return await handoff_service.export_released_dossier(
            session,
            request_id=request_id,
            receiver=receiver,
            shares=shares if shares is not None else [share("a"), share("b")],
            principal=principal,
            runtime=runtime,
        )

    await refused(Conflict, release)  # not approved yet
    async with harness.runtime.session_factory() as session:
        with pytest.raises(Forbidden):  # the requester cannot approve their own request
            await custody_service.decide(
                session,
                request_id=request_id,
                approver=names["a"],
                approve=True,
                keys=ring,
                words_key=harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL),
            )
        await session.rollback()
        await custody_service.decide(
            session,
            request_id=request_id,
            approver=names["b"],
            approve=True,
            keys=ring,
            words_key=harness.runtime.lookup_key(recusal.WORDS_KEY_LABEL),
        )
        await session.commit()
    await refused(Forbidden, lambda s: release(s, receiver=names["b"]))  # only the requester receives
    await refused(Invalid, lambda s: release(s, shares=[share("a")]))  # one custodian is not enough
    await refused(Invalid, lambda s: release(s, shares=[share("a"), share("a")]))
    # The exporter must be allowed to export the clue (another unit's investigator: it does not exist for
    # them); the release is undone with the refused export.
    await refused(NotFound, lambda s: release(s, token=world.other_investigator[1]))
    async with harness.runtime.session_factory() as session:
        assert (await session.get(CustodyRequest, request_id)).status == "approved"
        dossier = await release(session)
        await session.commit()

    members = _members(dossier.data)
    pdf_text = _pdftotext(members["dossier.pdf"], tmp_path)
    assert REPORTER_NAME in pdf_text and PHONE in pdf_text and "经保管人批准披露的身份信息" in pdf_text
    manifest = json.loads(members["manifest.json"])
    assert manifest["identity_included"] is True and manifest["identity_release_id"] == request_id
    assert manifest["identity_fields"] == ["举报人姓名", "联系电话"]
    assert manifest["hand_off"]["kind"] == "organ"
    assert "includes reporter identity released by custodians" in _verify_by_cli(
        harness, dossier.data, tmp_path
    )

    async with harness.runtime.session_factory() as session:
        row = await session.get(CustodyRequest, request_id)
        assert row.status == "released"
        kept = await session.scalar(select(Dossier).where(Dossier.digest == dossier.digest))
        assert kept.identity_included and kept.identity_release_id == request_id and kept.blob_id is None
        entries = {
            e.action: json.loads(e.details)
            for e in (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.object_id == clue_id).order_by(AuditEntry.id)
                )
            ).scalars()
        }
    assert entries["custody.requested"]["fields"] == ["name", "phone"]
    assert entries["custody.approved"]["transfer_id"] == transfer_id
    released = entries["custody.released"]
    assert released["request_id"] == request_id and released["transfer_id"] == transfer_id
    assert set(released["share_holders"]) == {ids["a"], ids["b"]}
    assert REPORTER_NAME not in json.dumps(entries, ensure_ascii=False) and PHONE not in json.dumps(entries)
    assert entries["clue.dossier_exported"]["identity_release_id"] == request_id
    # Not kept: nobody downloads it again; the request is used up.
    again = await harness.client.get(
        f"/api/v1/dossiers/{dossier.digest}", headers=auth(world.investigator[1])
    )
    assert again.status_code == 409, again.text
    await refused(Conflict, release)
    # Every other dossier still carries no identity.
    later = await harness.client.post(f"/api/v1/clues/{clue_id}/dossier", headers=auth(world.investigator[1]))
    _no_identity(later.content, tmp_path, (REPORTER_NAME, PHONE))


async def test_the_staff_form_covers_several_regions_in_one_version(harness: Harness) -> None:
    """Without JavaScript: the form repeats the region fields; row i of each is region i, blank rows are
    left out, an incomplete row is refused with its number and nothing changes."""
    world = await make_world(harness)
    supervisor = await make_web_staff(harness, ["supervisor"])  # before the clue: its key is wrapped to them
    response = await post_report(
        harness.client,
        {"text": "派出所民警收了红包，案子压着不立。", "accused_unit": world.accused_unit_name},
        files=[("照片.jpg", jpeg_with_gps(size=(120, 80)))],
    )
    assert response.status_code == 200, response.text
    clue_id = await clue_of_receipt(harness, receipt_from(response.text))  # anonymous: no exact time kept
    async with harness.runtime.session_factory() as session:
        image_id = await session.scalar(select(Attachment.id).where(Attachment.clue_id == clue_id))
    page_url = f"/staff/registry/clues/{clue_id}"
    regions = [(10, 10, 20, 15), (70, 40, 30, 25)]
    async with log_in(harness, supervisor) as browser:
        page = await browser.get(page_url)
        form = re.search(r'<form[^>]*id="redact-file".*?</form>', page.text, re.S)
        assert form and form.group(0).count('name="x"') == 5 and form.group(0).count('name="height"') == 5

        def fields(rows: list[tuple[str, ...]]) -> dict[str, object]:
            return {
                "csrf_token": csrf_of(page.text),
                "file": f"{image_id}|0",
                **{
                    name: [row[i] for row in rows]
                    for i, name in enumerate(("page", "x", "y", "width", "height"))
                },
                "reason": "遮盖车牌和人脸",
            }

        rows = [("1", *map(str, r)) for r in regions]
        incomplete = await browser.post(
            f"{page_url}/redactions/file",
            data=fields([rows[0], ("1", "70", "", "30", "25"), ("1", "", "", "", "")]),
        )
        assert incomplete.status_code == 422 and "第 2 行区域未填写完整" in incomplete.text
        shown = re.search(r'<form[^>]*id="redact-file".*?</form>', incomplete.text, re.S).group(0)
        assert 'value="70"' in shown and 'value="10"' in shown  # what was typed is shown again
        done = await browser.post(
            f"{page_url}/redactions/file", data=fields([rows[0], ("1", "", "", "", ""), rows[1]])
        )
        assert done.status_code == 303, done.text
    async with harness.runtime.session_factory() as session:
        versions = list(
            (await session.execute(select(Redaction).where(Redaction.target_id == image_id))).scalars()
        )
    assert [v.version for v in versions] == [1]  # one version for both regions
    listed = await harness.client.get(
        f"/api/v1/clues/{clue_id}/redactions", headers=auth(world.supervisor[1])
    )
    (version,) = listed.json()
    assert [(r["x"], r["y"], r["width"], r["height"]) for r in version["marks"]["regions"]] == regions
    picture = await harness.client.get(
        f"/api/v1/redactions/{version['id']}/file", headers=auth(world.supervisor[1])
    )
    with Image.open(io.BytesIO(picture.content)) as opened:
        pixels = opened.convert("RGB")
        for x, y, w, h in regions:
            for px, py in ((x + 2, y + 2), (x + w - 3, y + h - 3), (x + w // 2, y + h // 2)):
                assert max(pixels.getpixel((px, py))) < 40, (px, py)
        red, green, blue = pixels.getpixel((50, 60))  # between the regions: the photo's red
        assert red > 150 and green < 60 and blue < 60


async def test_release_into_a_dossier_by_the_custodial_command_line(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """`tipline custody request --into-dossier TRANSFER --field …`, approve, `release … --out`: passphrases on
    a pipe, the exporting staff member's token on standard input; the ZIP written verifies and carries the
    decided fields; a wrong passphrase writes nothing and is audited on its own."""
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
    async with running_app(tmp_path, fresh_database_url) as harness:
        world = await make_world(harness)
        body = {
            "text": "执行局干警收了好处费以后把查封的厂房低价拍给了关系人。",
            "anonymous": False,
            "accused": {"name": "孙某", "unit": world.accused_unit_name},
            "submitter": {"name": REPORTER_NAME, "phone": PHONE},
        }
        assert (await harness.client.post("/api/v1/tips", json=body)).status_code == 201
        async with harness.runtime.session_factory() as session:
            clue_id = (await session.execute(select(Receipt.clue_id))).scalar_one()
        await _send_on(harness, world, clue_id)
        transfer_id = await _transfer_id(harness, clue_id)
    request = [
        "custody",
        "request",
        "--clue",
        clue_id,
        "--as",
        a,
        "--reason",
        "移送检察机关须附实名举报人姓名",
    ]
    unnamed = run_cli([*request, "--into-dossier", transfer_id], env)
    assert unnamed.returncode == 1 and "name" in unnamed.stderr
    requested = run_cli([*request, "--into-dossier", transfer_id, "--field", "name"], env)
    assert requested.returncode == 0, requested.stderr
    request_id = requested.stdout.split()[1]
    assert run_cli(["custody", "approve", request_id, "--as", b], env).returncode == 0
    listed = run_cli(["custody", "list"], env)
    assert f"into hand-off {transfer_id}: name" in listed.stdout
    share = {n: next((tmp_path / "custody").glob(f"identity-*.{n}.share.json")) for n in (a, b)}
    out = tmp_path / "released.zip"
    command = [
        "custody",
        "release",
        request_id,
        "--as",
        a,
        "--share",
        str(share[a]),
        "--share",
        str(share[b]),
    ]
    token = world.supervisor[1] + "\n"
    wrong = run_cli_with_passphrases(
        [*command, "--out", str(out)], env, [phrases[0], "not the right one!!"], stdin=token
    )
    assert wrong.returncode == 1 and not out.exists() and REPORTER_NAME not in wrong.stdout + wrong.stderr
    released = run_cli_with_passphrases([*command, "--out", str(out)], env, phrases, stdin=token)
    assert released.returncode == 0, released.stderr
    assert REPORTER_NAME not in released.stdout and PHONE not in released.stdout
    manifest = json.loads(_members(out.read_bytes())["manifest.json"])
    assert manifest["identity_included"] is True and manifest["identity_release_id"] == request_id
    assert manifest["identity_fields"] == ["举报人姓名"]
    pdf_text = _pdftotext(_members(out.read_bytes())["dossier.pdf"], tmp_path)
    assert REPORTER_NAME in pdf_text and PHONE not in pdf_text  # only the decided field
    verified = run_cli(["dossier", "verify", str(out)], env)
    assert verified.returncode == 0 and "includes reporter identity" in verified.stdout, verified.stderr
    async with running_app(tmp_path, fresh_database_url) as harness:
        async with harness.runtime.session_factory() as session:
            actions = set((await session.execute(select(AuditEntry.action))).scalars())
    assert {"custody.requested", "custody.approved", "custody.release_failed", "custody.released"} <= actions
    assert "clue.dossier_exported" in actions
    assert run_cli(["audit", "verify"], env).returncode == 0
