"""Staff console admin pages for the registry: units (list, add with a parent), routing rules (list, add,
edit, enable/disable) and the taxonomy in force (view; reload for admins). Server-rendered Chinese, no
JavaScript, behind the staff session login, CSRF on every POST; the role checks are the API's (``Action``).
Bad input shows the form again with the message and changes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.auth import service as auth_service
from service.auth.permissions import Action, Role, is_allowed, require
from service.auth.service import Principal
from service.classification import service as classification_service
from service.http.deps import RuntimeDep, SessionDep
from service.platform.errors import DomainError, Invalid, NotFound
from service.registry import routing
from service.registry.models import RoutingRule
from service.staff_site.pages import render
from service.staff_site.registry_pages import _category_names, _people_with
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
