"""Contact details as the edge accepts them: validated with the libraries made for it.

Errors are pydantic custom errors whose `type` is our stable problem `code`, so the HTTP
layer can answer `email_required`, `invalid_email` or `invalid_phone` precisely.
"""

from __future__ import annotations

import functools

import phonenumbers
from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from pydantic_core import PydanticCustomError

from services.invite_service.domain.errors import EmailRequired, InvalidEmail, InvalidPhone


@functools.lru_cache(maxsize=16_384)
def _validated(address: str) -> ValidatedEmail:
    # Cached: a request checks an address at the edge and derives its identity after;
    # a bulk of 10,000 rows would otherwise pay email-validator twice per row.
    return validate_email(address, check_deliverability=False)


def _check(value: object) -> tuple[str, ValidatedEmail]:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PydanticCustomError(EmailRequired.code, EmailRequired.detail)
    if not isinstance(value, str):
        raise PydanticCustomError(InvalidEmail.code, InvalidEmail.detail)
    address = value.strip()
    try:
        return address, _validated(address)
    except EmailNotValidError as exc:
        raise PydanticCustomError(InvalidEmail.code, "That email address is not valid: {reason}", {"reason": str(exc)}) from None


def email_identity(address: str) -> str:
    """What two spellings of one address have in common: email-validator's normalised form
    (domain IDNA-decoded to Unicode NFC, so `xn--bcher-kva` and `Bücher` are one domain),
    lower-cased. The identity of an account in a workspace; its id derives from it."""
    return _validated(address.strip()).normalized.lower()


def check_email(value: object) -> str:
    """A valid address, kept as typed (only trimmed): what an email is sent to."""
    return _check(value)[0]


def normalise_email(value: object) -> str:
    """A valid address in its identity form (see `email_identity`)."""
    return _check(value)[1].normalized.lower()


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
