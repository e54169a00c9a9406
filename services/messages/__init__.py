"""Every message Porchlight sends, from templates: one template set per message type.

Pure rendering over `contracts` models, shared by whatever sends or previews a message
(the notifier, the staff API's preview) without either importing the other:

    for out in messages_for(event, secret_key=key, public_base_url=url):   # outgoing.py
        out.channel, out.to, out.email (subject, html, text, from_name, reply_to) or out.sms

A new message type is a folder under `templates/` (subject.txt, body.html, body.txt, and
sms.txt for a text message) and a function that builds its values, like `invite.render_invite`.
"""

from services.messages.branding import DEFAULT_BRAND_COLOR, Branding, safe_branding
from services.messages.invite import render_invite, render_invite_sms
from services.messages.outgoing import OutgoingMessage, messages_for, team_delivery_failed
from services.messages.password_reset import render_password_reset
from services.messages.rendering import RenderedEmail
from services.messages.sign_in import render_magic_link, render_sign_in_code, render_sign_in_code_sms
from services.messages.wording import BUTTONS

__all__ = [
    "BUTTONS",
    "DEFAULT_BRAND_COLOR",
    "Branding",
    "OutgoingMessage",
    "RenderedEmail",
    "messages_for",
    "render_invite",
    "render_invite_sms",
    "render_magic_link",
    "render_password_reset",
    "render_sign_in_code",
    "render_sign_in_code_sms",
    "safe_branding",
    "team_delivery_failed",
]
