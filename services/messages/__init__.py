"""Every message Porchlight sends, from templates: one template set per message type.

Pure rendering over `contracts` models, shared by whatever sends or previews a message
(the notifier today, a staff preview later) without either importing the other:

    rendered = render_invite(invite, link)   # contracts.access.InviteSent, the claim link
    rendered.subject, rendered.html, rendered.text, rendered.from_name

A new message type is a folder under `templates/` (subject.txt, body.html, body.txt) and
a function that builds its context, like `invite.render_invite`.
"""

from services.messages.branding import DEFAULT_BRAND_COLOR, Branding, safe_branding
from services.messages.invite import render_invite
from services.messages.rendering import RenderedEmail

__all__ = ["DEFAULT_BRAND_COLOR", "Branding", "RenderedEmail", "render_invite", "safe_branding"]
