"""Contact details as the edge accepts them: validated with the libraries made for it.

Errors are pydantic custom errors whose `type` is our stable problem `code`, so the HTTP
layer can answer `email_required`, `invalid_email` or `invalid_phone` precisely.
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic_core import PydanticCustomError

from services.invite_service.domain.errors import EmailRequired, InvalidEmail, InvalidPhone


def normalise_email(value: object) -> str:
    """Lower-cased, IDNA-normalised address: the identity of an account in a workspace."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PydanticCustomError(EmailRequired.code, EmailRequired.detail)
    if not isinstance(value, str):
        raise PydanticCustomError(InvalidEmail.code, InvalidEmail.detail)
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError(InvalidEmail.code, "That email address is not valid: {reason}", {"reason": str(exc)}) from None
    return checked.normalized.lower()


def normalise_phone(value: object) -> str | None:
    """E.164, or None when no phone was given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise PydanticCustomError(InvalidPhone.code, InvalidPhone.detail)
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise PydanticCustomError(InvalidPhone.code, InvalidPhone.detail) from None
    if not phonenumbers.is_valid_number(number):
        raise PydanticCustomError(InvalidPhone.code, InvalidPhone.detail)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
