"""Retention (issue 9): concluded clues past their period are purged by crypto-shredding; a legal hold stops
it. The purged envelopes and files are gone from the database (SQLite file and WAL with secure_delete; a
pg_dump) and from the file store; the purge leaves one audit entry with ids and counts only."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import select, update

from service.attachments.models import Attachment
from service.audit import service as audit_service
from service.audit.models import AuditEntry
from service.compartments import keys as compartment_keys
from service.compartments.models import ClueKeyWrap, ClueSealed
from service.custody.models import ClueContact
from service.messages.models import Message
from service.platform.timeutil import LOCAL, utcnow
from service.registry.models import Clue
from service.retention.models import LegalHold
from service.retention.tasks import purge_expired
from tests.helpers import files_under, pg_dump
from tests.helpers.app import auth, running_app, unique

OLD = utcnow() - timedelta(days=400)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (250, 20, 240)).save(out, "PNG")
    return out.getvalue()


def slices(data: bytes) -> list[bytes]:
    """Two 24-byte pieces from the end of a ciphertext (past any common header): enough to recognise it."""
    assert len(data) >= 120
    return [data[-64:-40], data[-30:-6]]


def database_bytes(backend: str, tmp_path: Path, url: str) -> bytes:
    """The SQLite file with its WAL and journal, or a full dump of the PostgreSQL database."""
    if backend == "sqlite":
        return b"".join(p.read_bytes() for p in tmp_path.glob("own.db*"))
    return pg_dump(url)


def found(piece: bytes, blob: bytes) -> bool:
    return piece in blob or piece.hex().encode() in blob  # raw, or bytea as hex in a dump


async def test_purge_shreds_expired_clues_and_respects_legal_hold(
    backend, tmp_path, fresh_database_url
) -> None:  # type: ignore[no-untyped-def]
    async with running_app(tmp_path, fresh_database_url, retention_days={"concluded": 365}) as h:
        _, supervisor = await h.add_staff(unique("督办"), ["supervisor"])
        _, operator = await h.add_staff(unique("接线"), ["operator"])
        _, investigator = await h.add_staff(unique("核查"), ["investigator"])

        async def tip(text: str) -> str:
            body = {
                "text": text,
                "anonymous": False,
                "submitter": {"name": "金丝雀甲", "phone": "13912345678", "email": "canary.r9@example.org"},
            }
            response = await h.client.post("/api/v1/tips", json=body)
            assert response.status_code == 201, response.text
            number = response.json()["registry_number"]
            async with h.runtime.session_factory() as session:
                return str(await session.scalar(select(Clue.id).where(Clue.registry_number == number)))

        expired = await tip("派出所副所长收受赌场老板好处费，充当保护伞。")
        held = await tip("法院执行局法官吃拿卡要，故意拖延执行。")
        recent = await tip("看守所民警私自为在押人员传递信件收钱。")
        message = await h.client.post(
            f"/api/v1/clues/{expired}/messages", json={"text": "请补充时间地点。"}, headers=auth(supervisor)
        )
        assert message.status_code == 201, message.text
        letter = await h.client.post(
            "/api/v1/letters",
            json={"postmark_date": datetime.now(LOCAL).date().isoformat(), "text": "来信：检察官收钱撤案。"},
            headers=auth(operator),
        )
        letter_id = letter.json()["clue_id"]
        page = await h.client.post(
            f"/api/v1/letters/{letter_id}/pages", content=png_bytes(), headers=auth(operator)
        )
        assert page.status_code == 201, page.text

        # Concluded long ago (the recent one concluded now); a supervisor holds one of the old ones.
        async with h.runtime.session_factory() as session:
            for clue_id in (expired, held, letter_id):
                await session.execute(
                    update(Clue).where(Clue.id == clue_id).values(status="concluded", registered_at=OLD)
                )
            await session.execute(update(Clue).where(Clue.id == recent).values(status="concluded"))
            await session.commit()
        url = f"/api/v1/clues/{held}/legal-hold"
        hold_body = {"held": True, "reason": "纪检监察机关调取，暂停销毁"}
        assert (await h.client.put(url, json=hold_body, headers=auth(investigator))).status_code == 403
        put = await h.client.put(url, json=hold_body, headers=auth(supervisor))
        assert put.status_code == 200 and put.json()["held"] is True
        assert (await h.client.get(url, headers=auth(supervisor))).json()["held"] is True

        # What exists before: the envelopes and the encrypted file of the clues to be purged.
        async with h.runtime.session_factory() as session:
            clue_rows = (
                await session.execute(select(Clue).where(Clue.id.in_([expired, letter_id])))
            ).scalars()
            envelopes = [e for c in clue_rows for e in (c.content, c.accused, c.identity) if e]
            envelopes += list(
                (await session.execute(select(Message.body).where(Message.clue_id == expired))).scalars()
            )
            envelopes += list(
                (
                    await session.execute(select(ClueContact.sealed).where(ClueContact.clue_id == expired))
                ).scalars()
            )
            # Compartments: the content key's wraps and the compartment copy go too.
            wraps = list(
                (
                    await session.execute(select(ClueKeyWrap.wrapped).where(ClueKeyWrap.clue_id == expired))
                ).scalars()
            )
            assert wraps
            envelopes += wraps
            # A clue's own fields: only the compartment copy since intake stopped writing the case-key one.
            for sealed in (
                await session.scalars(select(ClueSealed).where(ClueSealed.clue_id.in_([expired, letter_id])))
            ).all():
                envelopes += [sealed.content, sealed.accused]
            # The hold's reason is sealed to the held clue's own key where it has one.
            hold_reason = await session.scalar(select(LegalHold.reason).where(LegalHold.clue_id == held))
            assert hold_reason is not None and "暂停销毁".encode() not in hold_reason
            if await session.get(ClueSealed, held) is not None:
                assert compartment_keys.sealed_to_clue(hold_reason)
            attachment = (
                await session.execute(select(Attachment).where(Attachment.clue_id == letter_id))
            ).scalar_one()
            envelopes.append(attachment.wrapped_key)
            blob_id = attachment.blob_id
        assert (
            len(envelopes) >= 7
        )  # content, accused, identity, message, letter content and accused, file key
        blob_files = [p for p in files_under(tmp_path) if blob_id in p.name or blob_id in str(p.parent)]
        assert blob_files, "the page's encrypted file is in the store"
        blob_pieces = [piece for p in blob_files for piece in slices(p.read_bytes())]

        # The check below can see them: before the purge every envelope is found where it is stored.
        before = database_bytes(backend, tmp_path, fresh_database_url)
        assert all(found(piece, before) for e in envelopes for piece in slices(e))

        purged = await purge_expired(h.runtime, now=utcnow())
        assert sorted(purged) == sorted([expired, letter_id])
        assert await purge_expired(h.runtime, now=utcnow()) == []  # nothing left to do

        async with h.runtime.session_factory() as session:
            remaining = set((await session.execute(select(Clue.id))).scalars())
            assert {held, recent} <= remaining and not {expired, letter_id} & remaining
            assert await session.scalar(select(Attachment.id).where(Attachment.clue_id == letter_id)) is None
            entries = (
                await session.execute(
                    select(AuditEntry.action, AuditEntry.object_id, AuditEntry.details).where(
                        AuditEntry.action.in_(["clue.purged", "clue.legal_hold_set"])
                    )
                )
            ).all()
            report = await audit_service.verify(session)
        assert report.problem is None
        actions = {(a, o) for a, o, _ in entries}
        assert {
            ("clue.purged", expired),
            ("clue.purged", letter_id),
            ("clue.legal_hold_set", held),
        } <= actions
        for action, _, details in entries:
            if action == "clue.purged":
                parsed = json.loads(details) if isinstance(details, str) else details
                assert set(parsed) <= {"attachments", "messages", "blobs"}
        # Lifting the hold makes the held clue purgeable.
        lift = await h.client.put(url, json={"held": False, "reason": "调取结束"}, headers=auth(supervisor))
        assert lift.status_code == 200 and lift.json()["held"] is False
        assert await purge_expired(h.runtime, now=utcnow()) == [held]

    # Unreadable: no trace of the envelopes in the database, none of the file in the store.
    assert not any(p.exists() for p in blob_files)
    stored = database_bytes(backend, tmp_path, fresh_database_url)
    assert len(stored) > 10_000
    for envelope in envelopes:
        for piece in slices(envelope):
            assert not found(piece, stored)
    everything = b"".join(p.read_bytes() for p in files_under(tmp_path))
    for piece in blob_pieces:
        assert piece not in everything
