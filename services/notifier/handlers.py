"""The notifier's typed handlers: one per access event type it sends something for.

Registered on one subscriber of the access topic by main.py (services/common/event_routing.py
routes by the `type` header). A new message is a function here taking the event's typed
envelope, a line in HANDLERS, and a template set in services/messages.
"""

from __future__ import annotations

from typing import Annotated

from faststream import Context

from contracts import AccessEventV1
from contracts.access import InviteSentV1
from services.notifier.consumer import Notifier

NotifierContext = Annotated[Notifier, Context("notifier")]


async def on_invite_sent(msg: InviteSentV1, notifier: NotifierContext) -> None:
    """InviteSent: the invitation on each of its channels, once (see ledger.py)."""
    await notifier.deliver_invite(msg)


async def on_other_event(msg: AccessEventV1) -> None:
    """Every other event type: nothing to send, acknowledged. Still an envelope: anything that
    is not one fails validation here and is dead-lettered."""


HANDLERS = (on_invite_sent,)
