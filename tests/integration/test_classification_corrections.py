"""Classification through the API: staff corrections (audited, reason sealed), their export as labelled data
for ``tipline classify --eval``, the taxonomy in force and its reload, near-duplicate links by the worker."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from service.audit.models import AuditEntry
from service.classification import classifier
from service.classification import service as classification_service
from service.classification.models import ClassificationCorrection, ClueLink
from service.classification.taxonomy import DEFAULT_TAXONOMY_PATH, set_configured_path
from service.jobs.registry import Registry
from service.jobs.worker import Worker
from service.platform.timeutil import utcnow
from service.registry.models import Clue, ClueCategory
from tests.helpers.app import Harness, auth, cli_env, run_cli, running_app, unique
from tests.helpers.registry import make_world, seal_case_copy

PHONE = "13912345678"
TEXT = f"我叫王小明，手机{PHONE}。派出所民警收了对方的红包，还打招呼让案子不立案。"


async def _submit(harness: Harness, world, text: str = TEXT) -> str:  # type: ignore[no-untyped-def]
    response = await harness.client.post(
        "/api/v1/tips",
        json={"text": text, "accused": {"name": unique("张"), "unit": world.accused_unit_name}},
    )
    assert response.status_code == 201, response.text
    async with harness.runtime.session_factory() as session:
        return await session.scalar(
            select(Clue.id).where(Clue.registry_number == response.json()["registry_number"])
        )


async def _categories(harness: Harness, clue_id: str) -> set[str]:
    async with harness.runtime.session_factory() as session:
        rows = await session.scalars(select(ClueCategory.category).where(ClueCategory.clue_id == clue_id))
        return set(rows.all())


async def _audit(harness: Harness, clue_id: str, action: str) -> list[dict]:
    async with harness.runtime.session_factory() as session:
        rows = await session.scalars(
            select(AuditEntry.details)
            .where(AuditEntry.object_id == clue_id, AuditEntry.action == action)
            .order_by(AuditEntry.at, AuditEntry.id)  # in the order they happened, whatever chain holds them
        )
        return [json.loads(d) for d in rows.all()]


async def test_staff_correct_a_classification_with_a_sealed_reason(harness: Harness) -> None:
    world = await make_world(harness)
    clue_id = await _submit(harness, world)
    url = f"/api/v1/clues/{clue_id}/classification"
    before = await _categories(harness, clue_id)
    body = {"labels": ["case_suppression", "interference"], "reason": "举报内容是打招呼不立案，属于干预司法"}

    for token in (world.admin[1], world.operator[1]):  # roles that never may: 403 whatever the body
        assert (await harness.client.post(url, headers=auth(token), json={})).status_code == 403
        assert (await harness.client.get(url, headers=auth(token))).status_code == 403
    inv = auth(world.investigator[1])
    assert (await harness.client.post(url, headers=inv, json=body)).status_code == 404  # not assigned yet
    assert (await harness.client.get(url, headers=inv)).status_code == 404
    sup = auth(world.supervisor[1])
    for bad in (
        {**body, "labels": ["nope"]},
        {**body, "labels": ["other", "vice"]},
        {**body, "labels": ["vice", "vice"]},
        {**body, "labels": []},
        {**body, "reason": ""},
        {**body, "reason": "   "},
        {"labels": ["vice"]},
        {**body, "extra": 1},
    ):
        response = await harness.client.post(url, headers=sup, json=bad)
        assert response.status_code == 422, (bad, response.text)
        error = response.json()["error"]
        assert error["message"] and error["message_en"]
    assert (
        await harness.client.post(f"/api/v1/clues/{unique('x')}/classification", headers=sup, json=body)
    ).status_code == 404
    assert await _categories(harness, clue_id) == before  # nothing changed

    response = await harness.client.post(url, headers=sup, json=body)
    assert response.status_code == 201, response.text
    correction = response.json()
    assert correction["new_labels"] == ["interference", "case_suppression"]  # taxonomy order
    assert correction["old_labels"] == [c for c in classifier.current_taxonomy().category_ids if c in before]
    assert await _categories(harness, clue_id) == {"interference", "case_suppression"}

    # The assigned investigator may correct too; another investigator may not see the clue.
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", headers=sup, json={"assignee_id": world.investigator[0]}
    )
    assert response.status_code == 200, response.text
    other = auth(world.other_investigator[1])
    assert (await harness.client.post(url, headers=other, json=body)).status_code == 404
    response = await harness.client.post(
        url, headers=inv, json={"labels": ["other"], "reason": "核实为邻里纠纷"}
    )
    assert response.status_code == 201, response.text

    view = (await harness.client.get(url, headers=inv)).json()
    assert view["labels"] == ["other"] and view["needs_triage"] is False and view["corrected"] is True
    assert [c["reason"] for c in view["corrections"]] == [body["reason"], "核实为邻里纠纷"]
    assert view["corrections"][1]["old_labels"] == ["interference", "case_suppression"]
    machine = view["machine"]
    assert machine["taxonomy_version"] == classifier.current_taxonomy().version
    assert machine["evidence"] and {"id", "category", "start", "end", "weight", "kind"} <= set(
        machine["evidence"][0]
    )

    # Audited in the same transaction; labels in the audit, never the reason; reason sealed at rest.
    audited = await _audit(harness, clue_id, "clue.classification_corrected")
    assert [a["new_labels"] for a in audited] == [["interference", "case_suppression"], ["other"]]
    assert all(body["reason"] not in json.dumps(a, ensure_ascii=False) for a in audited)
    assert await _audit(harness, clue_id, "clue.classification_read")
    async with harness.runtime.session_factory() as session:
        rows = (
            await session.scalars(
                select(ClassificationCorrection).where(ClassificationCorrection.clue_id == clue_id)
            )
        ).all()
        clue = await session.get(Clue, clue_id)
    assert len(rows) == 2 and all("不立案".encode() not in r.reason for r in rows)
    assert clue.needs_triage is False


async def test_corrections_export_round_trips_through_eval(harness: Harness, tmp_path: Path) -> None:
    world = await make_world(harness)
    clue_id = await _submit(harness, world)
    sup = auth(world.supervisor[1])
    url = f"/api/v1/clues/{clue_id}/classification"
    for labels in (["vice"], ["case_suppression"]):  # the latest correction is the label
        response = await harness.client.post(url, headers=sup, json={"labels": labels, "reason": "复核"})
        assert response.status_code == 201, response.text
    # The command line holds no person's key: it exports clues registered before compartments (with a
    # case-key copy) and counts the others as not exported.
    await seal_case_copy(harness, clue_id)
    compartmented = await _submit(harness, world)
    response = await harness.client.post(
        f"/api/v1/clues/{compartmented}/classification",
        headers=sup,
        json={"labels": ["vice"], "reason": "复核"},
    )
    assert response.status_code == 201, response.text

    env = cli_env(harness.data_dir, harness.database_url)
    out = tmp_path / "corrections.jsonl"
    result = run_cli(["classify", "export-corrections", "--out", str(out)], env)
    assert result.returncode == 0, result.stderr
    assert "exported" in result.stderr and PHONE not in result.stderr
    assert "not exported (registered since compartments" in result.stderr
    assert out.stat().st_mode & 0o077 == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    [mine] = [line for line in lines if line["id"] == clue_id]
    assert not [line for line in lines if line["id"] == compartmented]
    assert set(mine) == {"id", "text", "labels"}
    assert mine["labels"] == ["case_suppression"]
    assert PHONE not in mine["text"] and "不立案" in mine["text"]  # the masked text only

    result = run_cli(["classify", "--eval", str(out)], env)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("macro-F1: ") and 0.0 <= float(last.split()[-1]) <= 1.0
    async with harness.runtime.session_factory() as session:
        exported = await session.scalar(
            select(AuditEntry.id).where(AuditEntry.action == "classification.corrections_exported")
        )
    assert exported is not None

    # Without the case private key the export refuses.
    bare = tmp_path / "nokey"
    shutil.copytree(harness.data_dir, bare)
    for key in (bare / "keys").glob("case*.private.json"):
        key.unlink()
    result = run_cli(["classify", "export-corrections"], cli_env(bare, harness.database_url))
    assert result.returncode == 2 and "case private key" in result.stderr


def _renamed_taxonomy(version: str) -> dict:
    data = json.loads(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"))
    data["version"] = version
    for category in data["categories"]:
        if category["id"] == "vice":
            category["name"] = "涉黄赌毒（本地更名）"
    data["categories"].insert(
        -1,
        {
            "id": "land_seizure",
            "tier": "N",
            "name": "违法征地拆迁",
            "description": "本地新增：强拆、违法征地中的政法干警违纪违法",
            "terms": {"强拆": 1.5, "征地": 1.0},
        },
    )
    return data


async def test_taxonomy_api_and_reload_without_restart(harness: Harness, tmp_path: Path) -> None:
    admin = await harness.add_staff(unique("adm"), ["admin"])
    sup = await harness.add_staff(unique("sup"), ["supervisor"])
    inv = await harness.add_staff(unique("inv"), ["investigator"])
    response = await harness.client.get("/api/v1/taxonomy", headers=auth(sup[1]))
    assert response.status_code == 200
    listed = response.json()
    assert [c["id"] for c in listed["categories"]] == classifier.current_taxonomy().category_ids
    assert listed["categories"][0]["tier"] == "6" and listed["categories"][0]["terms"] > 0
    assert (await harness.client.get("/api/v1/taxonomy", headers=auth(inv[1]))).status_code == 403
    assert (await harness.client.post("/api/v1/taxonomy/reload", headers=auth(sup[1]))).status_code == 403

    path = tmp_path / "taxonomy.json"
    shutil.copy(DEFAULT_TAXONOMY_PATH, path)
    original = classifier.current_taxonomy().version
    try:
        # Same database and keys as the harness, the taxonomy file from settings (TIPLINE_TAXONOMY_PATH).
        async with running_app(harness.data_dir, harness.database_url, taxonomy_path=path) as app:
            assert classifier.current_taxonomy().version == original
            path.write_text(json.dumps(_renamed_taxonomy("local-2026.1"), ensure_ascii=False), "utf-8")
            response = await app.client.post("/api/v1/taxonomy/reload", headers=auth(admin[1]))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["version"] == "local-2026.1"
            names = {c["id"]: c for c in body["categories"]}
            assert names["vice"]["name"] == "涉黄赌毒（本地更名）" and names["land_seizure"]["tier"] == "N"

            response = await app.client.post(
                "/api/v1/tips", json={"text": "镇派出所民警带人强拆我家房子，还打人。", "accused": {}}
            )
            assert response.status_code == 201, response.text
            async with app.runtime.session_factory() as session:
                clue = await session.scalar(
                    select(Clue).where(Clue.registry_number == response.json()["registry_number"])
                )
            categories = await _categories(app, clue.id)
            assert clue.taxonomy_version == "local-2026.1" and "land_seizure" in categories

            # A bad file is refused with a clear 422 and the good one stays in force.
            broken = _renamed_taxonomy("local-2026.2")
            broken["categories"][0]["patterns"] = [{"id": "bad", "regex": "(", "weight": 1}]
            path.write_text(json.dumps(broken, ensure_ascii=False), "utf-8")
            response = await app.client.post("/api/v1/taxonomy/reload", headers=auth(admin[1]))
            assert response.status_code == 422
            error = response.json()["error"]
            assert "invalid regex" in error["message_en"] and error["message"]
            path.write_text("{not json", "utf-8")
            assert (
                await app.client.post("/api/v1/taxonomy/reload", headers=auth(admin[1]))
            ).status_code == 422
            assert classifier.current_taxonomy().version == "local-2026.1"
            async with app.runtime.session_factory() as session:
                reloads = (
                    await session.scalars(
                        select(AuditEntry.details).where(AuditEntry.action == "taxonomy.reloaded")
                    )
                ).all()
            assert any(json.loads(d)["version"] == "local-2026.1" for d in reloads)

            # The CLI validates a file without putting it in force.
            env = cli_env(harness.data_dir, harness.database_url)
            result = run_cli(["taxonomy", "validate", str(path)], env)
            assert result.returncode == 1 and "not valid JSON" in result.stderr
            good = tmp_path / "good.json"
            good.write_text(json.dumps(_renamed_taxonomy("local-2026.3"), ensure_ascii=False), "utf-8")
            result = run_cli(["taxonomy", "validate", str(good)], env)
            assert result.returncode == 0 and "local-2026.3" in result.stdout
            result = run_cli(["taxonomy", "reload"], {**env, "TIPLINE_TAXONOMY_PATH": str(good)})
            assert result.returncode == 0 and "this process only" in result.stdout
    finally:
        set_configured_path(None)
        classifier.reload_taxonomy()
    assert classifier.current_taxonomy().version == original


async def test_near_duplicates_are_linked_by_the_worker_and_shown_as_related(harness: Harness) -> None:
    world = await make_world(harness)
    base = (
        "我要实名反映，某某县公安局城关派出所副所长长期收受辖区内娱乐场所老板的好处费，"
        f"每逢检查提前通风报信，群众多次举报都不了了之。{unique('编号')}"
    )
    first = await _submit(harness, world, base)
    again = await _submit(harness, world, base.replace("，", ",") + "请领导重视！")
    unrelated = await _submit(harness, world, "法院执行局的法官拖着案子不执行，当事人多次去问都说等等。")
    registry = Registry()
    from service.classification import tasks as classification_tasks

    registry.add(classification_tasks.tasks.get(classification_service.NEAR_DUPLICATE_TASK))  # type: ignore[arg-type]
    worker = Worker(harness.runtime, registry=registry)
    # A slot of the periodic task that no other test's worker has run yet (they share the database): the
    # task then takes the whole queue, these three clues included.
    assert await worker.run_once(utcnow() + timedelta(hours=1, seconds=uuid.uuid4().int % 3600 * 10)) >= 1
    async with harness.runtime.session_factory() as session:
        links = (
            await session.execute(
                select(ClueLink.clue_id, ClueLink.other_id, ClueLink.similarity).where(
                    ClueLink.clue_id.in_([first, again, unrelated])
                    | ClueLink.other_id.in_([first, again, unrelated])
                )
            )
        ).all()
    pairs = {frozenset((a, b)): s for a, b, s in links}
    assert frozenset((first, again)) in pairs and pairs[frozenset((first, again))] >= 0.6
    assert not any(unrelated in pair for pair in pairs)

    sup = auth(world.supervisor[1])
    related = (await harness.client.get(f"/api/v1/clues/{again}/related", headers=sup)).json()
    [link] = [r for r in related["near_duplicates"] if r["id"] == first]
    assert link["linked"] is True
    for clue_id in (first, again):  # linked, never merged or hidden
        assert (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=sup)).status_code == 200

    # Running the job again adds nothing (idempotent).
    async with harness.runtime.session_factory() as session:
        added = await classification_service.link_near_duplicates(
            session, runtime=harness.runtime, clue_ids=[first, again]
        )
        await session.commit()
    assert added == 0
