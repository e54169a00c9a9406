"""What the notifier core uses from the messages and providers packages, in one place:

- what to send for an event (services/messages/outgoing.py): `messages_for`, `team_delivery_failed`;
- how to send it (services/notifier/providers): the email and SMS providers, staff Gmail in
  front of the email provider, and the shapes they take and answer.
"""

from services.messages.outgoing import OutgoingMessage, messages_for, team_delivery_failed
from services.notifier.providers import Email, GmailRouter, SendResult, Sms, email_provider, sms_provider

__all__ = [
    "Email", "GmailRouter", "OutgoingMessage", "SendResult", "Sms", "email_provider", "messages_for",
    "sms_provider", "team_delivery_failed",
]
