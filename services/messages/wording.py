"""Words a message shares with the page it opens, so the client sees one wording throughout.

The portal pages show the same button (the claim page's button is `BUTTONS["invite"]`):
a page that opens from a message should take its button text from here.
"""

from __future__ import annotations

BUTTONS = {
    "invite": "Accept invitation",  # services/invite_service/templates/claim.html
    "password_reset": "Set a new password",
    "magic_link": "Sign in",
}
