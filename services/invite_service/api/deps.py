"""Request-scoped dependencies as `Annotated` aliases, resolved from `app.state`."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from services.common.settings import ApiSettings
from services.invite_service.application import PortalAccess


async def _app(request: Request) -> PortalAccess:
    return request.app.state.portal_access


async def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.read_pool


async def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


Access = Annotated[PortalAccess, Depends(_app)]
Pool = Annotated[asyncpg.Pool, Depends(_pool)]
Settings = Annotated[ApiSettings, Depends(_settings)]
