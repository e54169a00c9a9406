"""An invite's body → the Application's command; shared by the single, bulk and preview routes."""

from __future__ import annotations

from services.invite_service.api.schemas import InvitationIn
from services.invite_service.application import InviteCommand
from services.invite_service.contacts import email_identity


def to_command(body: InvitationIn) -> InviteCommand:
    return InviteCommand(
        email=email_identity(body.email),  # the account's identity: one account per address however spelt
        address=body.email,  # what the invitation is sent to: the address as typed
        name=body.name,
        role=body.role,
        company=body.company,
        phone=body.phone,
        contact_id=body.contact_id,
        resources=tuple(r.model_dump() for r in body.resources),
        channels=tuple(body.channels or ("email",)),
    )
