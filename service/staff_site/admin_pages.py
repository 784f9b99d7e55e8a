"""Staff console admin pages: staff accounts (create, disable, web-login password and TOTP, API tokens — a
new token or TOTP enrolment is shown once), units (list, add with a parent, rename, move, aliases), routing
rules (list, add, edit, enable/disable, remove), deadline rules (list, add, change the limit, remove) and the
taxonomy in force (view; reload for admins).
Server-rendered, Chinese with the English switch, no JavaScript, behind the staff session login, CSRF on every
POST; the role checks are the API's (``Action``) and every change goes through the same domain function as
the API route, which audits it. Bad input shows the page again with the message and changes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from service.auth import service as auth_service
from service.auth import sessions as session_service
from service.auth.login_models import StaffCredential
from service.auth.models import Staff, StaffRole
from service.auth.permissions import Action, Role, is_allowed, require
from service.auth.service import Principal
from service.auth.unit_names import aliases_of
from service.classification import classifier
from service.classification import service as classification_service
from service.http.deps import RuntimeDep, SessionDep
from service.platform.errors import DomainError, Invalid, NotFound
from service.registry import routing
from service.registry import service as registry_service
from service.registry.deadlines import DEFAULT_LIMITS, Stage
from service.registry.models import SOURCES, RoutingRule
from service.staff_site.pages import render
from service.staff_site.session import CsrfProtected, CurrentStaffSession

router = APIRouter(prefix="/staff/registry/admin", include_in_schema=False)

UNIT_KINDS = {
    "police": "公安机关",
    "procuratorate": "检察院",
    "court": "法院",
    "prison": "监狱",
    "justice": "司法行政机关",
    "committee": "政法委",
    "other": "其他",
}

Message = tuple[str, str] | None


def _saved(request: Request) -> Message:
    return ("已保存。", "Saved.") if request.query_params.get("done") else None


def _error(exc: DomainError) -> Message:
    return (exc.message, exc.message_en)


def _category_names() -> dict[str, str]:
    return {
        c.id: c.name.split("(")[0].split("（")[0].strip() for c in classifier.current_taxonomy().categories
    }


async def _people_with(session: Any, role: Role) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(Staff.id, Staff.name)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == role.value, Staff.disabled.is_(False))
        .order_by(Staff.name)
    )
    return [(r.id, r.name) for r in rows.all()]


# --- Units ---------------------------------------------------------------------------------------------


async def _units_page(
    request: Request,
    principal: Principal,
    session: Any,
    *,
    message: Message = None,
    message_class: str = "error",
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    units = await auth_service.list_units(session)
    names = {u.id: u.name for u in units}
    return render(
        request,
        "registry_admin_units.html",
        {
            "units": [
                {
                    "unit": u,
                    "parent": names.get(u.parent_id or "", ""),
                    "kind": UNIT_KINDS.get(u.kind, u.kind),
                    "aliases": aliases_of(u),
                }
                for u in units
            ],
            "kinds": list(UNIT_KINDS.items()),
            "may_manage": is_allowed(principal.roles, Action.manage_units),
            "form": form or {},
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/units")
async def units_page(request: Request, principal: CurrentStaffSession, session: SessionDep) -> Response:
    """Every unit with its parent and kind; admins get the form to add one."""
    require(principal.roles, Action.list_units)
    return await _units_page(request, principal, session, message=_saved(request), message_class="ok")


@router.post("/units")
async def add_unit(
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=32)] = "other",
    parent_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    require(principal.roles, Action.manage_units)
    form = {"name": name, "kind": kind, "parent_id": parent_id}
    try:
        if kind not in UNIT_KINDS:
            raise Invalid("单位类型无效", message_en="unknown unit kind")
        await auth_service.add_unit(
            session, name=name, kind=kind, parent_id=parent_id or None, actor=principal.actor
        )
    except DomainError as exc:
        await session.rollback()
        return await _units_page(
            request,
            principal,
            session,
            message=(exc.message, exc.message_en),
            form=form,
            status_code=exc.status_code,
        )
    return RedirectResponse("/staff/registry/admin/units?done=1", status_code=303)


UNITS_BASE = "/staff/registry/admin/units"


async def _unit_edit_page(
    request: Request,
    principal: Principal,
    session: Any,
    unit_id: str,
    *,
    message: Message = None,
    message_class: str = "error",
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    unit = await auth_service.find_unit_by_id(session, unit_id)
    units = await auth_service.list_units(session)
    # Parents on offer: not the unit itself nor anything under it (the service refuses those anyway).
    below = auth_service.unit_and_descendants(units, unit.id)
    return render(
        request,
        "registry_admin_unit_edit.html",
        {
            "unit": unit,
            "aliases": aliases_of(unit),
            "parents": [(u.id, u.name) for u in units if u.id not in below],
            # what was typed, the unit as it is for the other form
            "form": {"name": unit.name, "parent_id": unit.parent_id or "", **(form or {})},
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


async def _unit_action(
    request: Request, principal: Principal, session: Any, unit_id: str, work: Any, form: dict[str, str] | None
) -> Response:
    """Authorise, run one domain call; its error shows the unit's page again (an unknown unit is a 404)."""
    require(principal.roles, Action.manage_units)
    try:
        await work()
    except DomainError as exc:
        await session.rollback()
        await auth_service.find_unit_by_id(session, unit_id)
        return await _unit_edit_page(
            request, principal, session, unit_id, message=_error(exc), form=form, status_code=exc.status_code
        )
    return RedirectResponse(f"{UNITS_BASE}/{unit_id}?done=1", status_code=303)


@router.get("/units/{unit_id}")
async def unit_edit_page(
    unit_id: str, request: Request, principal: CurrentStaffSession, session: SessionDep
) -> Response:
    """One unit: rename it, move it under another parent, add and remove its aliases (admins)."""
    require(principal.roles, Action.manage_units)
    return await _unit_edit_page(
        request, principal, session, unit_id, message=_saved(request), message_class="ok"
    )


@router.post("/units/{unit_id}")
async def update_unit(
    unit_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    parent_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    async def work() -> None:
        await auth_service.update_unit(
            session, unit_id=unit_id, name=name, parent_id=parent_id or None, actor=principal.actor
        )

    form = {"name": name, "parent_id": parent_id}
    return await _unit_action(request, principal, session, unit_id, work, form)


@router.post("/units/{unit_id}/aliases")
async def add_unit_alias(
    unit_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    alias: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    async def work() -> None:
        await auth_service.add_unit_alias(session, unit_id=unit_id, alias=alias, actor=principal.actor)

    return await _unit_action(request, principal, session, unit_id, work, {"alias": alias})


@router.post("/units/{unit_id}/aliases/remove")
async def remove_unit_alias(
    unit_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    alias: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    async def work() -> None:
        await auth_service.remove_unit_alias(session, unit_id=unit_id, alias=alias, actor=principal.actor)

    return await _unit_action(request, principal, session, unit_id, work, None)


# --- Routing rules -------------------------------------------------------------------------------------


async def _rules_context(session: Any) -> dict[str, Any]:
    units = await auth_service.list_units(session)
    return {
        "unit_list": [(u.id, u.name) for u in units],
        "unit_names": {u.id: u.name for u in units},
        "categories": list(_category_names().items()),
        "category_names": _category_names(),
        "investigators": await _people_with(session, Role.investigator),
    }


async def _rules_page(
    request: Request,
    principal: Principal,
    session: Any,
    *,
    message: Message = None,
    message_class: str = "error",
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = await _rules_context(session)
    staff = dict(context["investigators"])
    return render(
        request,
        "registry_admin_rules.html",
        {
            **context,
            "rules": await routing.list_rules(session),
            "staff_names": staff,
            "may_manage": is_allowed(principal.roles, Action.manage_routing_rules),
            "form": form or {"priority": "100", "enabled": "1"},
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


def _rule_input(form: dict[str, str]) -> routing.RuleInput:
    if not form["handling_unit_id"]:
        raise Invalid("请选择承办单位", message_en="choose the handling unit")
    try:
        priority = int(form["priority"] or "100")
    except ValueError:
        raise Invalid("优先级须为整数", message_en="priority must be a whole number") from None
    if not 0 <= priority <= 100_000:
        raise Invalid("优先级超出范围（0–100000）", message_en="priority out of range (0-100000)")
    return routing.RuleInput(
        handling_unit_id=form["handling_unit_id"],
        category=form["category"] or None,
        accused_unit_id=form["accused_unit_id"] or None,
        default_assignee_id=form["default_assignee_id"] or None,
        priority=priority,
        enabled=bool(form["enabled"]),
    )


RuleForm = dict[str, str]


def _rule_form(
    handling_unit_id: str,
    category: str,
    accused_unit_id: str,
    default_assignee_id: str,
    priority: str,
    enabled: str,
) -> RuleForm:
    return {
        "handling_unit_id": handling_unit_id,
        "category": category,
        "accused_unit_id": accused_unit_id,
        "default_assignee_id": default_assignee_id,
        "priority": priority,
        "enabled": enabled,
    }


@router.get("/routing")
async def rules_page(request: Request, principal: CurrentStaffSession, session: SessionDep) -> Response:
    """The routing rules in the order they are tried; admins add, edit, enable and disable them."""
    require(principal.roles, Action.list_routing_rules)
    return await _rules_page(request, principal, session, message=_saved(request), message_class="ok")


@router.post("/routing")
async def add_rule(
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    handling_unit_id: Annotated[str, Form(max_length=36)] = "",
    category: Annotated[str, Form(max_length=48)] = "",
    accused_unit_id: Annotated[str, Form(max_length=36)] = "",
    default_assignee_id: Annotated[str, Form(max_length=36)] = "",
    priority: Annotated[str, Form(max_length=12)] = "100",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    require(principal.roles, Action.manage_routing_rules)
    form = _rule_form(handling_unit_id, category, accused_unit_id, default_assignee_id, priority, enabled)
    try:
        await routing.add_rule(session, data=_rule_input(form), actor=principal.actor)
    except DomainError as exc:
        await session.rollback()
        return await _rules_page(
            request,
            principal,
            session,
            message=(exc.message, exc.message_en),
            form=form,
            status_code=exc.status_code,
        )
    return RedirectResponse("/staff/registry/admin/routing?done=1", status_code=303)


async def _rule_edit_page(
    request: Request,
    principal: Principal,
    session: Any,
    rule: RoutingRule,
    *,
    form: RuleForm | None = None,
    message: Message = None,
    status_code: int = 200,
) -> Response:
    if form is None:
        form = _rule_form(
            rule.handling_unit_id,
            rule.category or "",
            rule.accused_unit_id or "",
            rule.default_assignee_id or "",
            str(rule.priority),
            "1" if rule.enabled else "",
        )
    return render(
        request,
        "registry_admin_rule_edit.html",
        {**await _rules_context(session), "rule": rule, "form": form, "message": message},
        principal=principal,
        status_code=status_code,
    )


async def _get_rule(session: Any, rule_id: str) -> RoutingRule:

    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("分办规则不存在", message_en="routing rule not found")
    return rule


@router.get("/routing/{rule_id}")
async def rule_edit_page(
    rule_id: str, request: Request, principal: CurrentStaffSession, session: SessionDep
) -> Response:
    require(principal.roles, Action.manage_routing_rules)
    return await _rule_edit_page(request, principal, session, await _get_rule(session, rule_id))


@router.post("/routing/{rule_id}")
async def update_rule(
    rule_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    handling_unit_id: Annotated[str, Form(max_length=36)] = "",
    category: Annotated[str, Form(max_length=48)] = "",
    accused_unit_id: Annotated[str, Form(max_length=36)] = "",
    default_assignee_id: Annotated[str, Form(max_length=36)] = "",
    priority: Annotated[str, Form(max_length=12)] = "100",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    require(principal.roles, Action.manage_routing_rules)
    rule = await _get_rule(session, rule_id)
    form = _rule_form(handling_unit_id, category, accused_unit_id, default_assignee_id, priority, enabled)
    try:
        await routing.update_rule(session, rule_id=rule.id, data=_rule_input(form), actor=principal.actor)
    except DomainError as exc:
        await session.rollback()
        rule = await _get_rule(session, rule_id)
        return await _rule_edit_page(
            request,
            principal,
            session,
            rule,
            form=form,
            message=(exc.message, exc.message_en),
            status_code=exc.status_code,
        )
    return RedirectResponse("/staff/registry/admin/routing?done=1", status_code=303)


@router.post("/routing/{rule_id}/enabled")
async def set_rule_enabled(
    rule_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Enable or disable a rule (the rest of it unchanged); audited like any change of a rule."""
    require(principal.roles, Action.manage_routing_rules)
    rule = await _get_rule(session, rule_id)
    data = routing.RuleInput(
        handling_unit_id=rule.handling_unit_id,
        category=rule.category,
        accused_unit_id=rule.accused_unit_id,
        default_assignee_id=rule.default_assignee_id,
        priority=rule.priority,
        enabled=bool(enabled),
    )
    try:
        await routing.update_rule(session, rule_id=rule.id, data=data, actor=principal.actor)
    except DomainError as exc:
        await session.rollback()
        return await _rules_page(
            request, principal, session, message=(exc.message, exc.message_en), status_code=exc.status_code
        )
    return RedirectResponse("/staff/registry/admin/routing?done=1", status_code=303)


@router.post("/routing/{rule_id}/remove")
async def remove_rule(
    rule_id: str, request: Request, principal: CsrfProtected, session: SessionDep
) -> Response:
    """Remove a rule (disabling keeps it for later). Clues it routed keep its id; the audit keeps what it
    said."""
    require(principal.roles, Action.manage_routing_rules)
    try:
        await routing.delete_rule(session, rule_id=rule_id, actor=principal.actor)
    except DomainError as exc:
        await session.rollback()
        if isinstance(exc, NotFound):
            raise
        return await _rules_page(
            request, principal, session, message=_error(exc), status_code=exc.status_code
        )
    return RedirectResponse("/staff/registry/admin/routing?done=1", status_code=303)


# --- Taxonomy ------------------------------------------------------------------------------------------


def _taxonomy_page(
    request: Request,
    principal: Principal,
    *,
    message: Message = None,
    message_class: str = "error",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "registry_admin_taxonomy.html",
        {
            "taxonomy": classification_service.taxonomy_summary(),
            "may_reload": is_allowed(principal.roles, Action.reload_taxonomy),
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/taxonomy")
async def taxonomy_page(request: Request, principal: CurrentStaffSession) -> Response:
    """The categories in force in this process: tier, name, description, term counts, version."""
    require(principal.roles, Action.view_taxonomy)
    done = ("已重新加载分类体系。", "Taxonomy reloaded.") if request.query_params.get("done") else None
    return _taxonomy_page(request, principal, message=done, message_class="ok")


@router.post("/taxonomy/reload")
async def reload_taxonomy(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Re-read the configured taxonomy file in THIS process (a bad file is refused, the old one stays)."""
    require(principal.roles, Action.reload_taxonomy)
    try:
        await classification_service.reload_taxonomy(
            session, path=runtime.settings.taxonomy_path, actor=principal.actor
        )
    except DomainError as exc:
        await session.rollback()
        return _taxonomy_page(
            request, principal, message=(exc.message, exc.message_en), status_code=exc.status_code
        )
    return RedirectResponse("/staff/registry/admin/taxonomy?done=1", status_code=303)


# --- Staff accounts ------------------------------------------------------------------------------------

ROLE_NAMES: dict[str, tuple[str, str]] = {
    Role.operator: ("接待登记员", "Operator"),
    Role.investigator: ("核查人员", "Investigator"),
    Role.supervisor: ("主管", "Supervisor"),
    Role.custodian: ("密钥保管人", "Key custodian"),
    Role.admin: ("系统管理员", "Administrator"),
}
STAFF_BASE = "/staff/registry/admin/staff"


async def _staff_list_page(
    request: Request,
    principal: Principal,
    session: Any,
    *,
    message: Message = None,
    message_class: str = "error",
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    units = await auth_service.list_units(session)
    return render(
        request,
        "admin_staff.html",
        {
            "people": await auth_service.list_staff(session),
            "unit_names": {u.id: u.name for u in units},
            "unit_list": [(u.id, u.name) for u in units],
            "role_names": ROLE_NAMES,
            "may_manage": is_allowed(principal.roles, Action.manage_staff),
            "form": form or {"roles": []},
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/staff")
async def staff_page(request: Request, principal: CurrentStaffSession, session: SessionDep) -> Response:
    """Every staff account with roles, unit and state; admins get the form to create one."""
    require(principal.roles, Action.list_staff)
    return await _staff_list_page(request, principal, session, message=_saved(request), message_class="ok")


@router.post("/staff")
async def add_staff(
    request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    require(principal.roles, Action.manage_staff)
    fields = await request.form()
    name = str(fields.get("name", ""))[:200]
    roles = [str(r) for r in fields.getlist("roles")][:10]
    unit_id = str(fields.get("unit_id", ""))[:36]
    form = {"name": name, "roles": roles, "unit_id": unit_id}
    try:
        staff, _ = await auth_service.add_staff(
            session, name=name, roles=roles, unit_id=unit_id or None, actor=principal.actor, keys=runtime.keys
        )
    except DomainError as exc:
        await session.rollback()
        return await _staff_list_page(
            request, principal, session, message=_error(exc), form=form, status_code=exc.status_code
        )
    return RedirectResponse(f"{STAFF_BASE}/{staff.id}?done=1", status_code=303)


async def _staff_detail_page(
    request: Request,
    principal: Principal,
    session: Any,
    staff_id: str,
    *,
    message: Message = None,
    message_class: str = "error",
    shown_once: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    staff = await auth_service.get_staff(session, staff_id)
    units = await auth_service.list_units(session)
    unit = next((u for u in units if u.id == staff.unit_id), None)
    credential = await session.get(StaffCredential, staff.id)
    return render(
        request,
        "admin_staff_one.html",
        {
            "staff": staff,
            "unit_name": unit.name if unit else "",
            "unit_list": [(u.id, u.name) for u in units],
            "roles": [ROLE_NAMES.get(r.role, (r.role, r.role)) for r in staff.roles],
            "password_set_at": credential.password_set_at if credential else None,
            "totp_enrolled_at": credential.totp_enrolled_at if credential else None,
            "tokens": await auth_service.list_tokens(session, staff_id=staff.id),
            "may_manage": is_allowed(principal.roles, Action.manage_staff),
            "may_manage_login": is_allowed(principal.roles, Action.manage_staff_login),
            "shown_once": shown_once,
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/staff/{staff_id}")
async def staff_detail(
    staff_id: str, request: Request, principal: CurrentStaffSession, session: SessionDep
) -> Response:
    """One account: roles, unit, web-login state, its API tokens, and what an admin may do with it."""
    require(principal.roles, Action.list_staff)
    return await _staff_detail_page(
        request, principal, session, staff_id, message=_saved(request), message_class="ok"
    )


async def _staff_action(
    request: Request,
    principal: Principal,
    session: Any,
    staff_id: str,
    action: Action,
    work: Any,
) -> Response:
    """Authorise, find the account, run one domain call; its error shows the account page again."""
    require(principal.roles, action)
    try:
        staff = await auth_service.get_staff(session, staff_id)
        shown_once = await work(staff)
    except DomainError as exc:
        await session.rollback()
        if isinstance(exc, NotFound):
            raise
        return await _staff_detail_page(
            request, principal, session, staff_id, message=_error(exc), status_code=exc.status_code
        )
    if shown_once:
        # A secret is on this page and nowhere else: no redirect, the page is not cached (Cache-Control).
        await session.commit()
        return await _staff_detail_page(
            request, principal, session, staff_id, shown_once=shown_once, message_class="ok"
        )
    return RedirectResponse(f"{STAFF_BASE}/{staff_id}?done=1", status_code=303)


@router.post("/staff/{staff_id}/disable")
async def disable_staff(
    staff_id: str, request: Request, principal: CsrfProtected, session: SessionDep
) -> Response:
    """Offboarding: the account stops working and its tokens are revoked (audited)."""

    async def work(staff: Staff) -> None:
        await auth_service.disable_staff(session, staff=staff, actor=principal.actor)

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff, work)


@router.post("/staff/{staff_id}/unit")
async def move_staff(
    staff_id: str, request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Move the person to another unit or out of theirs: the old unit's key is rotated (audited)."""
    unit_id = str((await request.form()).get("unit_id", ""))[:36]

    async def work(staff: Staff) -> None:
        await registry_service.move_staff(
            session, staff_id=staff.id, unit_id=unit_id or None, actor=principal.actor, keys=runtime.keys
        )

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff, work)


@router.post("/staff/{staff_id}/tokens")
async def issue_token(
    staff_id: str, request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """A new API token, shown on the answer page once; only its hash is kept."""

    async def work(staff: Staff) -> dict[str, str]:
        row, token = await auth_service.issue_token(
            session,
            staff=staff,
            ttl_days=runtime.settings.token_ttl_days,
            actor=principal.actor,
            personal=principal.own_key(staff.id),
        )
        return {"kind": "token", "value": token, "id": row.id}

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff, work)


@router.post("/staff/{staff_id}/tokens/{token_id}/revoke")
async def revoke_token(
    staff_id: str, token_id: str, request: Request, principal: CsrfProtected, session: SessionDep
) -> Response:
    async def work(staff: Staff) -> None:
        if token_id not in {t.id for t in await auth_service.list_tokens(session, staff_id=staff.id)}:
            raise Invalid("该令牌不属于此账号", message_en="that token is not this account's")
        await auth_service.revoke_token(session, token_id=token_id, actor=principal.actor)

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff, work)


@router.post("/staff/{staff_id}/password")
async def set_password(
    staff_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    runtime: RuntimeDep,
    password: Annotated[str, Form(max_length=256)] = "",
    password_again: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Set the web-login password (ends the account's web sessions). Audited, without the password."""

    async def work(staff: Staff) -> None:
        if password != password_again:
            raise Invalid("两次输入的密码不一致", message_en="the two passwords differ")
        await session_service.set_password(
            session,
            staff=staff,
            password=password,
            actor=principal.actor,
            keys=runtime.keys,
            personal=principal.own_key(staff.id),
        )

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff_login, work)


@router.post("/staff/{staff_id}/totp")
async def enrol_totp(
    staff_id: str, request: Request, principal: CsrfProtected, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """A new TOTP secret (replacing any old one); its otpauth URI is shown once."""

    async def work(staff: Staff) -> dict[str, str]:
        uri = await session_service.enrol_totp(
            session,
            totp_key=runtime.lookup_key(session_service.TOTP_KEY_LABEL),
            staff=staff,
            actor=principal.actor,
        )
        return {"kind": "totp", "value": uri}

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff_login, work)


@router.post("/staff/{staff_id}/totp/reset")
async def reset_totp(
    staff_id: str, request: Request, principal: CsrfProtected, session: SessionDep
) -> Response:
    """Remove the TOTP secret (a lost phone): no web login until a new enrolment."""

    async def work(staff: Staff) -> None:
        await session_service.reset_totp(session, staff=staff, actor=principal.actor)

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff_login, work)


@router.post("/staff/{staff_id}/sessions/revoke")
async def end_sessions(
    staff_id: str, request: Request, principal: CsrfProtected, session: SessionDep
) -> Response:
    async def work(staff: Staff) -> None:
        await session_service.end_all_sessions(session, staff_id=staff.id, actor=principal.actor)

    return await _staff_action(request, principal, session, staff_id, Action.manage_staff_login, work)


# --- Deadline rules ------------------------------------------------------------------------------------

STAGE_NAMES: dict[str, tuple[str, str]] = {
    Stage.referral: ("转办（非本系统管辖）", "Referral (out of scope)"),
    Stage.acceptance_notice: ("实名举报受理告知", "Acceptance notice to a real-name reporter"),
    Stage.disposal: ("提出处置意见", "Disposal proposal"),
    Stage.verification: ("初步核实", "Preliminary verification"),
    Stage.inquiry: ("谈话函询", "Talk or written inquiry"),
    Stage.outcome_feedback: ("实名举报结果反馈", "Outcome feedback to a real-name reporter"),
    Stage.transfer_feedback: ("移交后反馈", "Feedback after a transfer"),
    Stage.follow_up: ("实名举报人回访", "Follow-up call or visit to a real-name reporter"),
    Stage.objection: ("实名举报人异议答复", "Answer to a real-name reporter's objection"),
}
SOURCE_NAMES: dict[str, tuple[str, str]] = {
    "public_report": ("群众举报", "Public report"),
    "superior_assigned": ("上级交办", "Superior assignment"),
    "self_inspection": ("本级自查", "Self-inspection"),
    "voluntary_confession": ("主动交代", "Voluntary confession"),
}
assert set(SOURCE_NAMES) == set(SOURCES)


def _limit_text(working_days: int | None, months: int | None) -> tuple[str, str]:
    if months is not None:
        return (f"{months} 个月", f"{months} month(s)")
    return (f"{working_days} 个工作日", f"{working_days} working day(s)")


async def _deadlines_page(
    request: Request,
    principal: Principal,
    *,
    session: Any,
    message: Message = None,
    message_class: str = "error",
    form: dict[str, str] | None = None,
    edit: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin_deadlines.html",
        {
            "rules": await routing.list_deadline_rules(session),
            "defaults": [
                (STAGE_NAMES[stage], _limit_text(lim.working_days, lim.months))
                for stage, lim in DEFAULT_LIMITS.items()
            ],
            "stage_names": STAGE_NAMES,
            "source_names": SOURCE_NAMES,
            "categories": list(_category_names().items()),
            "category_names": _category_names(),
            "limit_text": _limit_text,
            "may_manage": is_allowed(principal.roles, Action.manage_deadline_rules),
            "form": form or {"unit": "working_days"},
            "edit": edit or {},
            "message": message,
            "message_class": message_class,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/deadlines")
async def deadlines_page(request: Request, principal: CurrentStaffSession, session: SessionDep) -> Response:
    """The time limits in force: the rules staff added (the most specific wins) and the built-in defaults."""
    require(principal.roles, Action.list_routing_rules)
    return await _deadlines_page(
        request, principal, session=session, message=_saved(request), message_class="ok"
    )


@router.post("/deadlines")
async def add_deadline_rule(
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    stage: Annotated[str, Form(max_length=32)] = "",
    source: Annotated[str, Form(max_length=24)] = "",
    category: Annotated[str, Form(max_length=48)] = "",
    amount: Annotated[str, Form(max_length=6)] = "",
    unit: Annotated[str, Form(max_length=16)] = "working_days",
) -> Response:
    require(principal.roles, Action.manage_deadline_rules)
    form = {"stage": stage, "source": source, "category": category, "amount": amount, "unit": unit}
    try:
        working_days, months = _limit_input(amount, unit)
        await routing.add_deadline_rule(
            session,
            stage=stage,
            source=source or None,
            category=category or None,
            working_days=working_days,
            months=months,
            actor=principal.actor,
        )
    except DomainError as exc:
        await session.rollback()
        return await _deadlines_page(
            request, principal, session=session, message=_error(exc), form=form, status_code=exc.status_code
        )
    return RedirectResponse("/staff/registry/admin/deadlines?done=1", status_code=303)


def _limit_input(amount: str, unit: str) -> tuple[int | None, int | None]:
    """(working_days, months) from the form's amount and unit."""
    try:
        number = int(amount)
    except ValueError:
        raise Invalid("期限须为整数", message_en="the limit must be a whole number") from None
    if unit not in ("working_days", "months"):
        raise Invalid("期限单位无效", message_en="choose working days or months")
    return (number, None) if unit == "working_days" else (None, number)


@router.post("/deadlines/{rule_id}")
async def update_deadline_rule(
    rule_id: str,
    request: Request,
    principal: CsrfProtected,
    session: SessionDep,
    amount: Annotated[str, Form(max_length=6)] = "",
    unit: Annotated[str, Form(max_length=16)] = "working_days",
) -> Response:
    """Change a rule's limit; clues already in a stage keep their due date (routing.update_deadline_limit)."""
    require(principal.roles, Action.manage_deadline_rules)
    try:
        working_days, months = _limit_input(amount, unit)
        await routing.update_deadline_limit(
            session, rule_id=rule_id, working_days=working_days, months=months, actor=principal.actor
        )
    except DomainError as exc:
        await session.rollback()
        if isinstance(exc, NotFound):
            raise
        return await _deadlines_page(
            request,
            principal,
            session=session,
            message=_error(exc),
            edit={"rule_id": rule_id, "amount": amount, "unit": unit},
            status_code=exc.status_code,
        )
    return RedirectResponse("/staff/registry/admin/deadlines?done=1", status_code=303)


@router.post("/deadlines/{rule_id}/remove")
async def remove_deadline_rule(
    rule_id: str, request: Request, principal: CsrfProtected, session: SessionDep
) -> Response:
    """Remove a rule (the built-in default or a less specific rule applies again). Audited."""
    require(principal.roles, Action.manage_deadline_rules)
    try:
        await routing.delete_deadline_rule(session, rule_id=rule_id, actor=principal.actor)
    except DomainError as exc:
        await session.rollback()
        return await _deadlines_page(
            request, principal, session=session, message=_error(exc), status_code=exc.status_code
        )
    return RedirectResponse("/staff/registry/admin/deadlines?done=1", status_code=303)
