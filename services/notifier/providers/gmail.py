"""Manual invites through the inviting staff member's own Gmail, with the transactional
provider behind it.

`POST {GMAIL_API_URL}/gmail/v1/users/me/messages/send` with the staff member's OAuth access
token as a Bearer token and {"raw": the RFC 5322 message, base64url}, as Google documents it.
Gmail sends from the connected account's address (it replaces a From it does not own), so
the recipient sees a person they know, and the workspace's Reply-To still applies.

A token that is expired (by its stored expiry, or Gmail answers 401) or no longer allowed to
send (403) is not an error the recipient should pay for: the same email goes through the
transactional provider, silently, and the result says `fell_back_from="gmail"` so the
delivery record shows it. Refreshing tokens is the host app's business: it holds the OAuth
client, and connects a fresh token with the same PUT.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from datetime import datetime, timezone
from email.policy import SMTPUTF8

import httpx

from services.common.gmail_tokens import GmailToken, GmailTokens, TokenSeal
from services.notifier.providers import http
from services.notifier.providers.base import Email, EmailProvider, SendResult, mime_bytes, mime_message, short_reason

log = logging.getLogger(__name__)

NAME = "gmail"
SEND_PATH = "/gmail/v1/users/me/messages/send"
FALL_BACK = (401, 403)


class GmailRouter:
    """Sends an email as `staff_id` through Gmail when they connected it, else (or when Gmail
    refuses the token) through `transactional`. Closing it closes only its own HTTP client:
    whoever built `transactional` closes that."""

    name = NAME

    def __init__(self, *, transactional: EmailProvider, tokens: GmailTokens | None, api_url: str | None,
                 timeout: float = 15.0) -> None:
        self.transactional = transactional
        self._tokens = tokens if api_url else None  # no GMAIL_API_URL: staff Gmail is not used
        self._client = http.client(api_url, timeout) if api_url else None

    @classmethod
    def from_settings(cls, settings, pool, transactional: EmailProvider) -> GmailRouter:  # NotifierSettings, asyncpg.Pool
        seal = TokenSeal(settings.porchlight_secret_key.get_secret_value().encode())
        return cls(transactional=transactional, tokens=GmailTokens(pool, seal), api_url=settings.gmail_api_url,
                   timeout=settings.provider_timeout_seconds)

    async def send(self, email: Email, *, workspace: str, staff_id: str | None) -> SendResult:
        """Raises only what reading the token store raises (PostgreSQL unreachable), like any
        other database error of the consumer; provider errors come back as a SendResult."""
        token = await self._tokens.get(workspace, staff_id) if self._tokens and staff_id else None
        if token is None:
            return await self.transactional.send(email)
        if token.expires_at is not None and token.expires_at <= datetime.now(timezone.utc):
            return await self._fall_back(email, workspace, staff_id, "the stored token has expired")
        result = await self._send(email, token)
        if result is None:
            return await self._fall_back(email, workspace, staff_id, "Gmail refused the token")
        return result

    async def _send(self, email: Email, token: GmailToken) -> SendResult | None:
        """The result, or None when Gmail refused the token (401/403)."""
        assert self._client is not None
        data = mime_bytes(email) or mime_message(email).as_bytes(policy=SMTPUTF8)
        raw = base64.urlsafe_b64encode(data).decode("ascii")
        try:
            response = await self._client.post(
                SEND_PATH, json={"raw": raw}, headers={"Authorization": f"Bearer {token.access_token}"}
            )
        except httpx.HTTPError as exc:
            return SendResult("transient", NAME, short_reason(http.network_reason(exc)))
        answer = http.json_body(response)
        if response.status_code == 200 and answer.get("id"):
            return SendResult("sent", NAME, provider_message_id=answer["id"])
        if response.status_code in FALL_BACK:
            return None
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        message = error.get("message") or response.reason_phrase
        reason = short_reason(f"{response.status_code} {error.get('status') or ''}: {message}")
        return SendResult("transient" if http.is_transient_status(response.status_code) else "permanent", NAME, reason)

    async def _fall_back(self, email: Email, workspace: str, staff_id: str, why: str) -> SendResult:
        # Names who, never the token: staff can reconnect, and ops can see why Gmail was skipped.
        log.info("gmail not used for %s/%s (%s); sending through %s", workspace, staff_id, why, self.transactional.name)
        return replace(await self.transactional.send(email), fell_back_from=NAME)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
