"""Authentication for staff API routes: ``CurrentStaff`` resolves the bearer token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth import service as auth_service
from service.auth.permissions import Action, require
from service.auth.service import Principal
from service.http.deps import SessionDep
from service.platform.errors import Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="Staff API token (`tipline staff add` prints one)")


async def current_staff(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or len(credentials.credentials) > 200:
        raise Unauthenticated("需要有效的登录凭据", message_en="a valid token is required")
    principal = await auth_service.authenticate(session, credentials.credentials)
    # End the lookup's transaction now: on SQLite every transaction holds the one write lock, and the
    # handler may register a report through the intake entry's own connection.
    await session.commit()
    return principal


CurrentStaff = Annotated[Principal, Depends(current_staff)]


def authorized(action: Action) -> Any:
    """A dependency that authenticates and checks ``action`` before the request body is validated, so a
    caller without the right role gets 403 whatever they sent: ``principal: Annotated[Principal,
    authorized(Action.assign_clue)]``."""

    async def dependency(principal: CurrentStaff) -> Principal:
        require(principal.roles, action)
        return principal

    return Depends(dependency)
