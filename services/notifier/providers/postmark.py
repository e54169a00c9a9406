"""The Postmark provider: `POST {POSTMARK_API_URL}/email`, as Postmark documents it.

Postmark answers 200 with a MessageID, or an error status with a JSON body carrying its
`ErrorCode` and `Message`. ErrorCode 406 ("inactive recipient": the address hard-bounced,
complained or was unsubscribed) is permanent and marks the address for suppression; any
other 4xx (422 for a refused request, 401 for a bad server token) is permanent too; 429 and
5xx are transient, as is a network error.
"""

from __future__ import annotations

from email.utils import formataddr

import httpx

from services.notifier.providers import http
from services.notifier.providers.base import Email, SendResult, short_reason

NAME = "postmark"
INACTIVE_RECIPIENT = 406  # Postmark's ErrorCode, not an HTTP status


class PostmarkProvider:
    name = NAME

    def __init__(self, *, api_url: str, server_token: str, message_stream: str = "outbound", timeout: float = 15.0) -> None:
        self._stream = message_stream
        self._client = http.client(api_url, timeout, headers={
            "Accept": "application/json",
            "X-Postmark-Server-Token": server_token,
        })

    @classmethod
    def from_settings(cls, settings) -> PostmarkProvider:  # NotifierSettings
        return cls(
            api_url=settings.postmark_api_url,
            server_token=settings.postmark_server_token.get_secret_value(),
            message_stream=settings.postmark_message_stream,
            timeout=settings.provider_timeout_seconds,
        )

    async def send(self, email: Email) -> SendResult:
        body = {
            "From": formataddr((email.from_name, email.from_address)),
            "To": email.to,
            "Subject": email.subject,
            "HtmlBody": email.html,
            "TextBody": email.text,
            "MessageStream": self._stream,
            # Comes back on Postmark's delivery and bounce webhooks: how they find our record.
            "Metadata": {"delivery_id": str(email.delivery_id)},
        }
        if email.reply_to:
            body["ReplyTo"] = email.reply_to
        try:
            response = await self._client.post("/email", json=body)
        except httpx.HTTPError as exc:
            return SendResult("transient", NAME, short_reason(http.network_reason(exc)))
        answer = http.json_body(response)
        if response.status_code == 200 and answer.get("ErrorCode", 0) == 0:
            return SendResult("sent", NAME, provider_message_id=answer.get("MessageID"))
        code = answer.get("ErrorCode")
        reason = short_reason(f"{response.status_code} ErrorCode {code}: {answer.get('Message') or response.reason_phrase}")
        if http.is_transient_status(response.status_code):
            return SendResult("transient", NAME, reason)
        return SendResult("permanent", NAME, reason, inactive_recipient=code == INACTIVE_RECIPIENT)

    async def close(self) -> None:
        await self._client.aclose()
