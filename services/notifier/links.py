"""The link in an invitation email: derived here when sending, never stored, logged or published."""

from __future__ import annotations

from uuid import UUID

from contracts.access import InviteSent
from services.common import tokens
from services.common.settings import NotifierSettings


def claim_link(settings: NotifierSettings, invitation_id: UUID, invite: InviteSent) -> str:
    key = settings.porchlight_secret_key.get_secret_value().encode()
    token = tokens.make_token(key, tokens.CLAIM, invitation_id, invite.nonce)
    return tokens.claim_link(settings.public_base_url, invite.workspace, token)
