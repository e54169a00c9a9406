"""How the notifier sends: one email provider (SMTP or Postmark, per EMAIL_PROVIDER), staff
Gmail in front of it for manual invites (GmailRouter), and SMS through Twilio when configured.

Each provider answers a SendResult and never raises for what the provider or the network did.
"""

from __future__ import annotations

from services.notifier.providers.base import Email, EmailProvider, SendResult, Sms, SmsProvider
from services.notifier.providers.gmail import GmailRouter
from services.notifier.providers.postmark import PostmarkProvider
from services.notifier.providers.smtp import SmtpProvider
from services.notifier.providers.twilio import TwilioProvider

__all__ = [
    "Email", "EmailProvider", "GmailRouter", "PostmarkProvider", "SendResult", "Sms", "SmsProvider",
    "SmtpProvider", "TwilioProvider", "email_provider", "sms_provider",
]


def email_provider(settings) -> EmailProvider:  # NotifierSettings
    """The workspace's transactional provider: Postmark in production, SMTP self-hosted and in dev."""
    if settings.email_provider == "postmark":
        return PostmarkProvider.from_settings(settings)
    return SmtpProvider(settings)


def sms_provider(settings) -> SmsProvider | None:  # NotifierSettings
    """Twilio when TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM are set; else no SMS."""
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        return TwilioProvider.from_settings(settings)
    return None
