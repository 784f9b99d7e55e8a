"""The ASGI application: ``create_app()`` builds one for the roles a process runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from service.api.attachments import router as attachments_router
from service.api.classification import router as classification_router
from service.api.contact import router as contact_router
from service.api.handoff import router as handoff_router
from service.api.hotline import UPLOAD_PATHS as HOTLINE_UPLOAD_PATHS
from service.api.hotline import router as hotline_router
from service.api.mail import router as mail_router
from service.api.messages import UPLOAD_PATHS as MESSAGE_UPLOAD_PATHS
from service.api.messages import receipt_router
from service.api.messages import staff_router as messages_router
from service.api.redaction import router as redaction_router
from service.api.registry import ROUTERS as REGISTRY_ROUTERS
from service.api.registry.clues import UPLOAD_PATHS as DOCUMENT_UPLOAD_PATHS
from service.api.retention import router as retention_router
from service.api.staff import router as auth_router
from service.api.tips import router as intake_router
from service.app import observability
from service.app.processes import running_worker_process
from service.app.runtime import ROLES, build_runtime
from service.citizen.call_record import router as call_record_router
from service.citizen.routes import UPLOAD_PATHS as WEB_UPLOAD_PATHS
from service.citizen.routes import router as web_router
from service.classification import classifier
from service.http.errors import BodySizeLimit, install_error_handlers
from service.jobs.worker import running_worker
from service.mail.imap import running_poller
from service.mail.ingest import running_receiver
from service.platform.migrations import ensure_schema
from service.platform.settings import Settings, get_settings
from service.staff_site.admin_pages import router as registry_admin_pages_router
from service.staff_site.clue_pages import UPLOAD_PATHS as CLUE_PAGE_UPLOAD_PATHS
from service.staff_site.intake_pages import UPLOAD_PATHS as STAFF_PAGE_UPLOAD_PATHS
from service.staff_site.intake_pages import router as staff_intake_pages_router
from service.staff_site.login import router as staff_login_router
from service.staff_site.pages import install_error_pages
from service.staff_site.registry_pages import router as registry_pages_router
from service.staff_site.routes import router as staff_web_router
from service.staff_site.session import install_login_redirect

# What a citizen can reach (the intake role) and what only staff can (the staff role).
PUBLIC_ROUTERS = (intake_router, receipt_router, web_router, call_record_router)
STAFF_ROUTERS = (
    auth_router,
    staff_login_router,
    *REGISTRY_ROUTERS,
    registry_pages_router,
    registry_admin_pages_router,
    messages_router,
    contact_router,
    attachments_router,
    classification_router,
    retention_router,
    handoff_router,
    redaction_router,
    mail_router,
    hotline_router,
    staff_web_router,
    staff_intake_pages_router,
)


def create_app(
    settings: Settings | None = None,
    roles: frozenset[str] = frozenset(ROLES),
    *,
    run_worker: bool = False,
    run_smtp: bool = False,
) -> FastAPI:
    """``run_worker``: run the job loop in this process (``tipline serve`` with the worker role);
    tests leave it off and drive ``service.jobs.worker.Worker.run_once`` themselves."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        classifier.configure_taxonomy(settings.taxonomy_path)  # per process, at every start
        runtime = build_runtime(settings, roles)
        try:
            await ensure_schema(runtime.engine, auto_upgrade=settings.database_auto_upgrade)
        except BaseException:
            await runtime.close()
            raise
        if roles & {"intake", "mail"}:
            await runtime.intake.start()
        app.state.runtime = runtime
        app.state.session_factory = runtime.session_factory
        async with AsyncExitStack() as stack:
            # Ledger and statistics reads: a replica if configured; on SQLite, lock-free read transactions.
            app.state.read_session_factory = runtime.read_session_factory
            if run_worker and "worker" in roles:
                if settings.worker_process:
                    await stack.enter_async_context(running_worker_process(app, settings))
                else:
                    await stack.enter_async_context(running_worker(app, runtime))
            # Mail role: the SMTP receiver (and the IMAP poller, if configured) on this event loop.
            if run_smtp and "mail" in roles:
                await stack.enter_async_context(running_receiver(app, runtime))
                if settings.imap_host:
                    await stack.enter_async_context(running_poller(runtime))
            yield
        await runtime.close()

    app = FastAPI(
        title="Tipline",
        version="0.1.0",
        description="举报受理与线索台账 API · Tip intake and clue registry API",
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc load their script, styles and favicon from public CDNs; ours below
        # serves Swagger UI from this process, and ReDoc (which also pulls web fonts) is off.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    observability.install(app, roles)
    # Upload routes parse their bodies as streams and enforce their own limits; everything else is capped.
    exempt: tuple[str, ...] = ()
    if "intake" in roles:
        exempt += tuple(WEB_UPLOAD_PATHS)
        for router in PUBLIC_ROUTERS:
            app.include_router(router)
    if "staff" in roles:
        exempt += (
            *HOTLINE_UPLOAD_PATHS,
            *DOCUMENT_UPLOAD_PATHS,
            *STAFF_PAGE_UPLOAD_PATHS,
            *MESSAGE_UPLOAD_PATHS,
            *CLUE_PAGE_UPLOAD_PATHS,
        )
        for router in STAFF_ROUTERS:
            app.include_router(router)
        install_login_redirect(app)
        install_error_pages(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes, exempt_paths=exempt)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
# The page's one inline script starts Swagger UI; everything else comes from this origin, and the browser is
# told to refuse anything that does not.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def install_docs(app: FastAPI) -> None:
    """``/docs``: the OpenAPI UI with Swagger UI's script and styles served by this service (the files of
    the ``fastapi-offline`` package), so it works without the internet and no request leaves the site."""

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        response = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Tipline API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from the public validator
        )
        response.headers["Content-Security-Policy"] = DOCS_CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/docs/static/{name}", include_in_schema=False)
    async def api_docs_asset(name: str) -> Response:
        if name not in DOCS_FILES:
            return Response(status_code=404)
        return FileResponse(
            DOCS_ASSETS / name, media_type=DOCS_FILES[name], headers={"Cache-Control": "max-age=86400"}
        )


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory --workers N`` (``tipline serve --workers N``): roles from
    TIPLINE_SERVE_ROLES (comma-separated; default all), settings from the environment."""
    import os

    names = [r for r in os.environ.get("TIPLINE_SERVE_ROLES", "").split(",") if r]
    roles = frozenset(names or ROLES)
    observability.configure_logging()  # a fresh process per worker: uvicorn's log_config is off
    return create_app(get_settings(), roles, run_worker="worker" in roles)
