"""`POST /webhooks/postmark`: Postmark's delivery and bounce webhooks.

Postmark calls it with the basic-auth credentials configured on its side
(POSTMARK_WEBHOOK_USER/PASSWORD here; without them every call is refused). A Delivery
record marks the delivery 'delivered', a Bounce 'bounced'; a hard bounce or an address
Postmark deactivated also puts the address on the suppression list, so it is not emailed
again until staff resend. The delivery is found by the `delivery_id` the notifier put in the
message's Metadata (else by Postmark's MessageID). The record is written to the notifier's
ledger and published to the deliveries topic by the notifier (services/notifier/receipts.py).
Answers 200 once recorded (also for a message that is not ours, which Postmark must not
retry); a database failure answers 5xx and Postmark retries.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import uuid
from typing import Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field

from services.common.problems import Problem, problem_responses
from services.invite_service.api.deps import ReadPool, Settings
from services.notifier import receipts

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

# Bounce types after which Postmark itself stops sending to the address.
HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "SpamComplaint"})


class PostmarkRecord(BaseModel):
    """The fields of Postmark's Delivery and Bounce webhook bodies we use; the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    RecordType: str = Field(examples=["Delivery", "Bounce"])
    MessageID: str | None = None
    Metadata: dict[str, str] = Field(default_factory=dict)
    Recipient: str | None = Field(None, description="Delivery: the address")
    Email: str | None = Field(None, description="Bounce: the address")
    Type: str | None = Field(None, description="Bounce type", examples=["HardBounce", "SoftBounce"])
    Inactive: bool = Field(False, description="Postmark deactivated the address")
    Description: str | None = None
    Details: str | None = None


class WebhookOut(BaseModel):
    status: Literal["recorded", "ignored"]


def _check(authorization: str | None, settings) -> None:
    user, password = settings.postmark_webhook_user, settings.postmark_webhook_password
    if not user or password is None or not password.get_secret_value():
        raise Problem(403, "webhook_disabled", "Webhook not configured",
                      "Set POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD to accept Postmark's webhooks.")
    given_user, given_password = b"", b""
    if authorization and authorization[:6].lower() == "basic ":
        try:
            given_user, _, given_password = base64.b64decode(authorization[6:], validate=True).partition(b":")
        except (binascii.Error, ValueError):
            pass
    # Both compared in constant time, and both always compared: no early exit tells which was wrong.
    ok_user = hmac.compare_digest(given_user, user.encode())
    ok_password = hmac.compare_digest(given_password, password.get_secret_value().encode())
    if not (ok_user and ok_password):
        raise Problem(401, "unauthorized", "Unauthorized", "Wrong or missing webhook credentials.",
                      headers={"WWW-Authenticate": 'Basic realm="postmark"'})


@router.post(
    "/webhooks/postmark",
    response_model=WebhookOut,
    summary="Postmark delivery and bounce webhooks",
    responses=problem_responses({401: "Wrong or missing basic auth (`unauthorized`)",
                                 403: "Webhook credentials not configured (`webhook_disabled`)"}),
)
async def postmark_webhook(
    body: PostmarkRecord, settings: Settings, pool: ReadPool, authorization: str | None = Header(None)
) -> WebhookOut:
    _check(authorization, settings)
    if body.RecordType not in ("Delivery", "Bounce"):
        return WebhookOut(status="ignored")  # opens, clicks, spam complaints' own stream: not ours to track
    try:
        delivery_id = uuid.UUID(body.Metadata["delivery_id"]) if "delivery_id" in body.Metadata else None
    except ValueError:
        delivery_id = None
    if body.RecordType == "Delivery":
        receipt = receipts.Receipt("delivered", delivery_id, body.MessageID, body.Recipient, body.Details, False)
    else:
        reason = " ".join(p for p in (body.Type, body.Description) if p) or "bounced"
        receipt = receipts.Receipt("bounced", delivery_id, body.MessageID, body.Email, reason[:500],
                                   body.Inactive or body.Type in HARD)
    recorded = await receipts.record(pool, receipt)
    if recorded is None:
        log.info("postmark %s for a message that is not ours (or not sent yet): ignored", body.RecordType)
        return WebhookOut(status="ignored")
    log.info("postmark %s recorded for delivery %s", body.RecordType, recorded)
    return WebhookOut(status="recorded")
