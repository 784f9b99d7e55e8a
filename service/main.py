"""The ASGI application: ``create_app()`` builds one for the roles a process runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.http import BodySizeLimit, install_error_handlers
from service.migrations import ensure_schema
from service.runtime import ROLES, build_runtime
from service.settings import Settings, get_settings


def create_app(settings: Settings | None = None, roles: frozenset[str] = frozenset(ROLES)) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, roles)
        try:
            await ensure_schema(runtime.engine, auto_upgrade=settings.database_auto_upgrade)
        except BaseException:
            await runtime.close()
            raise
        app.state.runtime = runtime
        app.state.session_factory = runtime.session_factory
        yield
        await runtime.close()

    app = FastAPI(
        title="Tipline",
        version="0.1.0",
        description="举报受理与线索台账 API · Tip intake and clue registry API",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)

    from service.intake.routes import router as intake_router

    if "intake" in roles:
        app.include_router(intake_router)
    if "staff" in roles:
        from service.auth.routes import router as auth_router
        from service.registry.routes import router as registry_router

        app.include_router(auth_router)
        app.include_router(registry_router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
