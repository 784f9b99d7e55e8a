"""Short dependency aliases for route handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.platform.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:  # async: a sync dependency costs a thread hop
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
