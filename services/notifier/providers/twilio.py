"""The SMS provider: a Twilio-style `POST {TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Messages.json`,
form-encoded To/From/Body with HTTP basic auth (account sid, auth token), as Twilio documents it.

Twilio answers 201 with the message's `sid`, or an error status with a JSON body carrying its
own `code` and `message` (21211: not a valid phone number; 21610: the recipient replied STOP).
A 4xx is permanent; 429, 5xx and network errors are transient.
"""

from __future__ import annotations

import httpx

from services.notifier.providers import http
from services.notifier.providers.base import SendResult, Sms, short_reason

NAME = "twilio"


class TwilioProvider:
    name = NAME

    def __init__(self, *, api_url: str, account_sid: str, auth_token: str, sender: str, timeout: float = 15.0) -> None:
        self._path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        # A messaging service (its sid starts MG) picks the number itself; otherwise From is the number.
        self._sender = {"MessagingServiceSid": sender} if sender.startswith("MG") else {"From": sender}
        self._client = http.client(api_url, timeout, auth=httpx.BasicAuth(account_sid, auth_token),
                                   headers={"Accept": "application/json"})

    @classmethod
    def from_settings(cls, settings) -> TwilioProvider:  # NotifierSettings
        return cls(
            api_url=settings.twilio_api_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            sender=settings.twilio_from,
            timeout=settings.provider_timeout_seconds,
        )

    async def send(self, sms: Sms) -> SendResult:
        try:
            response = await self._client.post(self._path, data={"To": sms.to, **self._sender, "Body": sms.body})
        except httpx.HTTPError as exc:
            return SendResult("transient", NAME, short_reason(http.network_reason(exc)))
        answer = http.json_body(response)
        if response.status_code in (200, 201) and answer.get("sid"):
            return SendResult("sent", NAME, provider_message_id=answer["sid"])
        message = answer.get("message") or response.reason_phrase
        reason = short_reason(f"{response.status_code} code {answer.get('code')}: {message}")
        return SendResult("transient" if http.is_transient_status(response.status_code) else "permanent", NAME, reason)

    async def close(self) -> None:
        await self._client.aclose()
