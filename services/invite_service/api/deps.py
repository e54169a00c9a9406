"""Every `Annotated` dependency the write side's routes take, in one place.

Routes never read `app.state`; these resolvers do, from what `create_app` put there. The
aliases the read side shares (staff claims, the asyncpg pool) are defined in
services/common/deps.py and re-exported here, so a route imports from this module only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.deps import ReadPool, StaffAdmin, StaffReader, StaffWriter
from services.common.settings import ApiSettings
from services.invite_service.api.rate_limits import FailureLimiter
from services.invite_service.api.readiness import BrokerProbe
from services.invite_service.application import PortalAccess
from services.invite_service.signin.throttle import Throttle

__all__ = ["Access", "Broker", "ClaimFailures", "ReadPool", "Settings", "SignInThrottle", "StaffAdmin", "StaffReader", "StaffWriter"]


# async: FastAPI would run a plain `def` dependency in its thread pool, one hop per request.
async def _access(request: Request) -> PortalAccess:
    return request.app.state.portal_access


async def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings


async def _claim_failures(request: Request) -> FailureLimiter:
    return request.app.state.claim_failures


async def _throttle(request: Request) -> Throttle:
    return request.app.state.throttle


async def _broker(request: Request) -> BrokerProbe:
    return request.app.state.broker_probe


Access = Annotated[PortalAccess, Depends(_access)]
Settings = Annotated[ApiSettings, Depends(_settings)]
ClaimFailures = Annotated[FailureLimiter, Depends(_claim_failures)]
Broker = Annotated[BrokerProbe, Depends(_broker)]
SignInThrottle = Annotated[Throttle, Depends(_throttle)]
