"""Foundation II: the whole staff journey through httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from service.audit import service as audit_service
from service.audit.models import AuditEntry
from tests.helpers.app import Harness, auth, unique


async def submit(harness: Harness, **extra: object) -> str:
    body = {"text": "看守所管教民警收了家属的钱，帮忙把人弄去保外就医，其实人根本没病。", **extra}
    response = await harness.client.post("/api/v1/tips", json=body)
    assert response.status_code == 201, response.text
    return response.json()["registry_number"]


async def clue_id_for(harness: Harness, supervisor: str, number: str) -> str:
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await harness.client.get("/api/v1/clues", params=params, headers=auth(supervisor))).json()
        for item in page["items"]:
            if item["registry_number"] == number:
                return item["id"]
        cursor = page["next_cursor"]
        assert cursor, f"{number} not listed"


async def audit_actions(harness: Harness, object_id: str) -> list[tuple[str, str]]:
    async with harness.runtime.session_factory() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.object_id == object_id)
            .order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows]


async def test_the_whole_journey(harness: Harness) -> None:
    station = await harness.add_unit(unique("城关派出所"))
    discipline = await harness.add_unit(unique("区纪委监委"))
    supervisor_id, supervisor = await harness.add_staff(unique("督办科长"), ["supervisor"], discipline)
    investigator_id, investigator = await harness.add_staff(unique("核查员甲"), ["investigator"], discipline)
    _, other_investigator = await harness.add_staff(unique("核查员乙"), ["investigator"], discipline)
    _, admin = await harness.add_staff(unique("管理员"), ["admin"])

    number = await submit(harness, accused={"name": "张某", "unit": "看守所"})
    clue_id = await clue_id_for(harness, supervisor, number)

    # The supervisor assigns it.
    response = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": investigator_id}, headers=auth(supervisor)
    )
    assert response.status_code == 200, response.text
    assert response.json()["assignee_id"] == investigator_id

    # The investigator pulls and reads it.
    page = (await harness.client.get("/api/v1/me/clues", headers=auth(investigator))).json()
    assert [item["id"] for item in page["items"]] == [clue_id]
    response = await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(investigator))
    assert response.status_code == 200
    detail = response.json()
    assert detail["text"].startswith("看守所管教民警")
    assert detail["accused"]["name"] == "张某"
    for key in (
        "id",
        "registry_number",
        "source",
        "channel",
        "status",
        "categories",
        "needs_triage",
        "due_at",
    ):
        assert key in detail
    assert "submitter" not in detail and "identity" not in detail

    # A second investigator: 404, not 403. Anonymous: 401. Admin: no content.
    assert (
        await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(other_investigator))
    ).status_code == 404
    assert (
        await harness.client.get(f"/api/v1/clues/{station}", headers=auth(investigator))
    ).status_code == 404
    anonymous = await harness.client.get(f"/api/v1/clues/{clue_id}")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert (await harness.client.get("/api/v1/me/clues")).status_code == 401
    assert (await harness.client.get(f"/api/v1/clues/{clue_id}", headers=auth(admin))).status_code == 404
    assert (await harness.client.get("/api/v1/clues", headers=auth(admin))).status_code == 403
    assert (await harness.client.get("/api/v1/clues", headers=auth(investigator))).status_code == 403
    assert (await harness.client.get("/api/v1/me/clues", headers=auth(supervisor))).status_code == 403

    # Every read and the assignment left audit entries, and the chain verifies.
    actions = await audit_actions(harness, clue_id)
    assert actions[0] == ("clue.registered", "public")
    assert ("clue.assigned", audit_service.staff_actor(supervisor_id)) in actions
    assert ("clue.read", audit_service.staff_actor(investigator_id)) in actions
    async with harness.runtime.session_factory() as session:
        report = await audit_service.verify(session)
    assert report.problem is None, report.problem.describe()


async def test_me_describes_the_caller(harness: Harness) -> None:
    unit = await harness.add_unit(unique("区法院"))
    staff_id, token = await harness.add_staff(unique("法官助理"), ["investigator", "custodian"], unit)
    me = (await harness.client.get("/api/v1/me", headers=auth(token))).json()
    assert me["id"] == staff_id and me["roles"] == ["custodian", "investigator"] and me["unit"]["id"] == unit


async def test_recusal_refuses_staff_of_the_accused_unit_and_its_parts(harness: Harness) -> None:
    bureau_name = unique("公安分局")
    bureau = await harness.add_unit(bureau_name)
    squad = await harness.add_unit(unique("刑警大队"), parent_id=bureau)
    outside = await harness.add_unit(unique("区纪委监委"))
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], outside)
    insider_id, _ = await harness.add_staff(unique("分局核查员"), ["investigator"], squad)
    outsider_id, _ = await harness.add_staff(unique("纪委核查员"), ["investigator"], outside)

    number = await submit(harness, accused={"name": "李某", "unit": f" {bureau_name} "})
    clue_id = await clue_id_for(harness, supervisor, number)
    refused = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": insider_id}, headers=auth(supervisor)
    )
    assert refused.status_code == 409 and "回避" in refused.json()["error"]["message"]
    accepted = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": outsider_id}, headers=auth(supervisor)
    )
    assert accepted.status_code == 200


async def test_recusal_by_free_text_unit_name_when_unit_not_resolved_at_intake(harness: Harness) -> None:
    outside = await harness.add_unit(unique("政法委执法监督科"))
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], outside)
    court_name = unique("区人民法院")
    number = await submit(harness, accused={"name": "赵某", "unit": court_name})  # unit registered later
    court = await harness.add_unit(court_name)
    judge_id, _ = await harness.add_staff(unique("法院核查员"), ["investigator"], court)
    clue_id = await clue_id_for(harness, supervisor, number)
    refused = await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": judge_id}, headers=auth(supervisor)
    )
    assert refused.status_code == 409


async def test_assignment_errors_are_clear(harness: Harness) -> None:
    unit = await harness.add_unit(unique("检察院"))
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], unit)
    operator_id, _ = await harness.add_staff(unique("接线员"), ["operator"], unit)
    number = await submit(harness)
    clue_id = await clue_id_for(harness, supervisor, number)
    url = f"/api/v1/clues/{clue_id}/assign"
    assert (
        await harness.client.post(url, json={"assignee_id": operator_id}, headers=auth(supervisor))
    ).status_code == 422
    assert (
        await harness.client.post(url, json={"assignee_id": "nobody"}, headers=auth(supervisor))
    ).status_code == 404
    assert (await harness.client.post(url, json={}, headers=auth(supervisor))).status_code == 422
    missing = "/api/v1/clues/00000000-0000-0000-0000-000000000000/assign"
    assert (
        await harness.client.post(missing, json={"assignee_id": operator_id}, headers=auth(supervisor))
    ).status_code == 404


async def test_pagination_filters_and_due_date_order(harness: Harness) -> None:
    unit = await harness.add_unit(unique("司法局"))
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], unit)
    investigator_id, investigator = await harness.add_staff(unique("核查员"), ["investigator"], unit)
    for _ in range(5):
        clue_id = await clue_id_for(harness, supervisor, await submit(harness))
        response = await harness.client.post(
            f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": investigator_id}, headers=auth(supervisor)
        )
        assert response.status_code == 200
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await harness.client.get("/api/v1/me/clues", params=params, headers=auth(investigator))
        ).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 and len({c["id"] for c in seen}) == 5
    assert [c["due_at"] for c in seen] == sorted(c["due_at"] for c in seen)
    filtered = await harness.client.get(
        "/api/v1/me/clues", params={"status": "concluded"}, headers=auth(investigator)
    )
    assert filtered.json()["items"] == []
    assert (
        await harness.client.get("/api/v1/me/clues", params={"cursor": "!!"}, headers=auth(investigator))
    ).status_code == 422
    assert (
        await harness.client.get("/api/v1/me/clues", params={"limit": 0}, headers=auth(investigator))
    ).status_code == 422
    by_source = await harness.client.get(
        "/api/v1/clues", params={"source": "bogus"}, headers=auth(supervisor)
    )
    assert by_source.status_code == 422


async def test_revoked_and_disabled_tokens_stop_working(harness: Harness) -> None:
    _, admin = await harness.add_staff(unique("管理员"), ["admin"])
    staff_id, token = await harness.add_staff(unique("核查员"), ["investigator"])
    assert (await harness.client.get("/api/v1/me", headers=auth(token))).status_code == 200

    issued = await harness.client.post(f"/api/v1/staff/{staff_id}/tokens", headers=auth(admin))
    assert issued.status_code == 201
    second = issued.json()
    assert (await harness.client.get("/api/v1/me", headers=auth(second["token"]))).status_code == 200
    assert (
        await harness.client.post(f"/api/v1/tokens/{second['id']}/revoke", headers=auth(admin))
    ).status_code == 204
    assert (await harness.client.get("/api/v1/me", headers=auth(second["token"]))).status_code == 401
    assert (await harness.client.get("/api/v1/me", headers=auth(token))).status_code == 200

    assert (
        await harness.client.post(f"/api/v1/staff/{staff_id}/disable", headers=auth(admin))
    ).status_code == 200
    assert (await harness.client.get("/api/v1/me", headers=auth(token))).status_code == 401
    assert (await harness.client.get("/api/v1/me", headers=auth("tlk_" + "x" * 43))).status_code == 401
    assert (await harness.client.get("/api/v1/me", headers={"Authorization": "Basic abc"})).status_code == 401


async def test_admin_manages_units_and_staff_but_others_cannot(harness: Harness) -> None:
    _, admin = await harness.add_staff(unique("管理员"), ["admin"])
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"])
    name = unique("第三派出所")
    created = await harness.client.post(
        "/api/v1/units", json={"name": name, "kind": "police"}, headers=auth(admin)
    )
    assert created.status_code == 201
    assert (
        await harness.client.post("/api/v1/units", json={"name": name}, headers=auth(admin))
    ).status_code == 409
    assert (
        await harness.client.post(
            "/api/v1/units", json={"name": unique("x"), "parent_id": "nope"}, headers=auth(admin)
        )
    ).status_code == 404
    assert (
        await harness.client.post("/api/v1/units", json={"name": unique("x")}, headers=auth(supervisor))
    ).status_code == 403
    staff = await harness.client.post(
        "/api/v1/staff",
        json={"name": unique("新人"), "roles": ["investigator"], "unit_id": created.json()["id"]},
        headers=auth(admin),
    )
    assert staff.status_code == 201 and staff.json()["roles"] == ["investigator"]
    bad_role = await harness.client.post(
        "/api/v1/staff", json={"name": unique("x"), "roles": ["king"]}, headers=auth(admin)
    )
    assert bad_role.status_code == 422
    assert (
        await harness.client.post(
            "/api/v1/staff", json={"name": unique("x"), "roles": ["admin"]}, headers=auth(supervisor)
        )
    ).status_code == 403
    assert any(
        u["name"] == name
        for u in (await harness.client.get("/api/v1/units", headers=auth(supervisor))).json()
    )


async def test_role_is_checked_before_the_body(harness: Harness) -> None:
    _, investigator = await harness.add_staff(unique("核查员"), ["investigator"])
    response = await harness.client.post("/api/v1/units", json={"nonsense": True}, headers=auth(investigator))
    assert response.status_code == 403
    response = await harness.client.post("/api/v1/units", json={"nonsense": True})
    assert response.status_code == 401


async def _assign(harness: Harness, token: str, clue_id: str, assignee_id: str, **extra: object):  # type: ignore[no-untyped-def]
    return await harness.client.post(
        f"/api/v1/clues/{clue_id}/assign", json={"assignee_id": assignee_id, **extra}, headers=auth(token)
    )


async def test_recusal_catches_spelling_variants_of_the_accused_unit(harness: Harness) -> None:
    """A unit's name anywhere in what the reporter wrote counts: before/after words and punctuation, and the
    parent bureau named in front; an alias counts like the name."""
    station = unique("城关派出所")
    bureau_name = unique("县公安局")
    bureau = await harness.add_unit(bureau_name)
    station_id = await harness.add_unit(station, parent_id=bureau)
    outside = await harness.add_unit(unique("区纪委监委"))
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], outside)
    insider_id, _ = await harness.add_staff(unique("所内核查员"), ["investigator"], station_id)
    for written in (f"县公安局{station}", f"{station}民警", f"{station}。", f" {station} ", f"{bureau_name}"):
        number = await submit(harness, accused={"name": "李某", "unit": written})
        clue_id = await clue_id_for(harness, supervisor, number)
        refused = await _assign(harness, supervisor, clue_id, insider_id)
        assert refused.status_code == 409, written
        assert refused.json()["error"]["code"] == "conflict" and "回避" in refused.json()["error"]["message"]
        # Confirming does not override a unit that is named.
        assert (
            await _assign(harness, supervisor, clue_id, insider_id, confirm_recusal=True)
        ).status_code == 409
    # The unit named in the position field counts too.
    number = await submit(harness, accused={"name": "李某", "position": f"{station}副所长"})
    clue_id = await clue_id_for(harness, supervisor, number)
    assert (await _assign(harness, supervisor, clue_id, insider_id)).status_code == 409

    # An alias, set by the administrator, counts like the name.
    alias = unique("城关所")
    async with harness.runtime.session_factory() as session:
        from service.auth import service as auth_service

        unit = await auth_service.find_unit(session, station_id)
        await auth_service.set_unit_aliases(session, unit=unit, aliases=[alias], actor="test")
        await session.commit()
    number = await submit(harness, accused={"name": "李某", "unit": f"{alias}的民警"})
    clue_id = await clue_id_for(harness, supervisor, number)
    assert (await _assign(harness, supervisor, clue_id, insider_id)).status_code == 409


async def test_an_ambiguous_unit_needs_the_supervisors_confirmation(harness: Harness) -> None:
    """Words that come close to the assignee's unit without naming it ("城关所" for "城关派出所") need the
    supervisor's explicit confirmation, which is audited."""
    core = unique("城关")
    station_id = await harness.add_unit(f"{core}派出所")
    outside = await harness.add_unit(unique("区纪委监委"))
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], outside)
    near_id, _ = await harness.add_staff(unique("核查员"), ["investigator"], station_id)
    far_id, _ = await harness.add_staff(unique("核查员"), ["investigator"], outside)
    number = await submit(harness, accused={"name": "李某", "unit": f"{core}所"})
    clue_id = await clue_id_for(harness, supervisor, number)
    unconfirmed = await _assign(harness, supervisor, clue_id, near_id)
    assert unconfirmed.status_code == 409
    assert unconfirmed.json()["error"]["code"] == "recusal_unconfirmed"
    assert (await _assign(harness, supervisor, clue_id, far_id)).status_code == 200  # not near: no question
    confirmed = await _assign(harness, supervisor, clue_id, near_id, confirm_recusal=True)
    assert confirmed.status_code == 200
    async with harness.runtime.session_factory() as session:
        details = (
            (
                await session.execute(
                    select(AuditEntry.details).where(
                        AuditEntry.object_id == clue_id, AuditEntry.action == "clue.assigned"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert any('"recusal_confirmed":true' in d for d in details)
    assert sum('"recusal_confirmed":true' in d for d in details) == 1  # only the confirmed one


async def test_staff_of_no_unit_cannot_be_assigned(harness: Harness) -> None:
    outside = await harness.add_unit(unique("区纪委监委"))
    _, supervisor = await harness.add_staff(unique("科长"), ["supervisor"], outside)
    async with harness.runtime.session_factory() as session:
        from service.auth import service as auth_service

        loner, _ = await auth_service.add_staff(
            session,
            name=unique("无单位核查员"),
            roles=["investigator"],
            unit_id=None,
            actor="test",
            keys=harness.runtime.keys,
        )
        await session.commit()
    number = await submit(harness, accused={"name": "李某", "unit": unique("某派出所")})
    clue_id = await clue_id_for(harness, supervisor, number)
    refused = await _assign(harness, supervisor, clue_id, loner.id)
    assert refused.status_code == 422 and "未归属" in refused.json()["error"]["message"]
    async with harness.runtime.session_factory() as session:
        assigned = await session.scalar(
            select(AuditEntry.id).where(AuditEntry.object_id == clue_id, AuditEntry.action == "clue.assigned")
        )
    assert assigned is None
