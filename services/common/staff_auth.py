"""Staff authentication: HS256 JWTs signed by the host app with STAFF_JWT_SECRET.

The dependencies are `async def` on purpose: FastAPI runs plain `def` dependencies in its
thread pool, and a thread hop per dependency per request costs more than checking a JWT.

A token for another workspace answers 404, as if the workspace did not exist, so a
token never reveals which other workspaces there are.

Routes take these through the aliases in services/common/deps.py (StaffReader, StaffWriter,
StaffAdmin).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.problems import Problem, not_found

StaffRole = Literal["owner", "admin", "dispatcher", "agent", "viewer"]
WRITER_ROLES: frozenset[str] = frozenset({"owner", "admin", "dispatcher"})
SETTINGS_ROLES: frozenset[str] = frozenset({"owner", "admin"})

_bearer = HTTPBearer(auto_error=False, description="Staff JWT (HS256), claims sub, ws, role, exp")


class StaffClaims(BaseModel):
    model_config = ConfigDict(frozen=True)  # cached per token and shared between requests

    sub: str
    ws: str
    role: StaffRole
    exp: int
    # Optional display name (the OIDC `name` claim): invites say "Pat at Pride Travelers invited you".
    name: str | None = Field(None, max_length=120)

    @property
    def actor(self) -> dict[str, str | None]:
        actor: dict[str, str | None] = {"kind": "staff", "id": self.sub, "reason": None}
        if self.name and self.name.strip():
            actor["name"] = " ".join(self.name.split())  # one line: it ends up in email subjects
        return actor

    @property
    def can_write(self) -> bool:
        return self.role in WRITER_ROLES


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def decode_staff_token(token: str, secret: str) -> StaffClaims:
    claims = _verified_claims(token, secret)
    if claims.exp <= time.time():  # checked on every use: a cached token still expires on time
        raise unauthorized("The staff token has expired.")
    return claims


@lru_cache(maxsize=4096)
def _verified_claims(token: str, secret: str) -> StaffClaims:
    """Signature and claims checked once per token: a host app sends the same token with
    every request, and checking it was a tenth of an invite's CPU. Failures raise, and
    lru_cache keeps no failures, so a bad token is checked (and refused) every time."""
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "ws", "role", "exp"]})
        return StaffClaims.model_validate(payload)
    except jwt.ExpiredSignatureError:
        raise unauthorized("The staff token has expired.") from None
    except (jwt.InvalidTokenError, ValidationError):
        raise unauthorized("The staff token is missing, malformed or not signed with the expected key.") from None


async def staff_for_workspace(
    ws: str, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> StaffClaims:
    """The caller's claims, checked against the `{ws}` in the path."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("Send a staff token as `Authorization: Bearer <JWT>`.")
    claims = decode_staff_token(credentials.credentials, request.app.state.staff_jwt_secret)
    if claims.ws != ws:
        raise not_found("workspace")
    return claims


async def staff_writer(claims: Annotated[StaffClaims, Depends(staff_for_workspace)]) -> StaffClaims:
    if not claims.can_write:
        raise Problem(403, "forbidden_role", "Forbidden", f"The {claims.role} role may only read.")
    return claims


async def staff_settings_admin(claims: Annotated[StaffClaims, Depends(staff_for_workspace)]) -> StaffClaims:
    if claims.role not in SETTINGS_ROLES:
        raise Problem(403, "forbidden_role", "Forbidden", "Only owners and admins change workspace settings.")
    return claims


def make_staff_token(
    secret: str, *, sub: str, ws: str, role: str, ttl_seconds: int = 3600, name: str | None = None
) -> str:
    """For the dev launcher's demo token and for tests; host apps sign their own."""
    claims: dict[str, object] = {"sub": sub, "ws": ws, "role": role, "exp": int(time.time()) + ttl_seconds}
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")
