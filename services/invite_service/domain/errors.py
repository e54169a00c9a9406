"""Domain errors. The HTTP layer maps each `code` to a status and a problem-details body."""


class DomainError(Exception):
    code = "domain_error"
    detail = "The request could not be completed."

    def __init__(self, detail: str | None = None, **extra: object) -> None:
        self.detail = detail or self.detail
        self.extra = extra
        super().__init__(self.detail)


class EmailRequired(DomainError):
    code = "email_required"
    detail = "This contact has no email address on file."


class InvalidEmail(DomainError):
    code = "invalid_email"
    detail = "That email address is not valid."


class InvalidPhone(DomainError):
    code = "invalid_phone"
    detail = "That phone number is not valid; use the international format, e.g. +14155550123."


class DuplicateEmail(DomainError):
    code = "duplicate_email"
    detail = "This workspace already has a portal account for that email."


class WorkspaceNotFound(DomainError):
    code = "workspace_not_found"
    detail = "No such workspace."


class PortalDisabled(DomainError):
    code = "portal_disabled"
    detail = "The client portal is turned off for this workspace."


class PlanRequired(DomainError):
    code = "plan_required"
    detail = "Portal invitations need the Pro plan."


class UnknownRole(DomainError):
    code = "unknown_role"
    detail = "That role is not defined in this workspace."


class InvalidState(DomainError):
    code = "invalid_state"
    detail = "That action is not allowed in the account's current state."


class LinkInvalid(DomainError):
    code = "link_invalid"
    detail = "That link is no longer valid."


class AccountNotFound(DomainError):
    code = "account_not_found"
    detail = "No such account."


class TooManyResends(DomainError):
    code = "too_many_resends"
    detail = "This account was sent too many invites in the last hour; try again later."


class LockedOut(DomainError):
    code = "too_many_attempts"
    detail = "Too many wrong attempts; sign-in is locked for a while."


class WrongCode(DomainError):
    code = "wrong_code"
    detail = "That code is not right, or it has expired. Check the latest email, or ask for a new code."


class WrongPassword(DomainError):
    code = "wrong_password"
    detail = "That email and password do not match."


class WeakPassword(DomainError):
    code = "weak_password"
    detail = "Choose a different password."


class CsrfFailed(DomainError):
    code = "csrf_failed"
    detail = "The form expired or did not come from this site; reload the page and try again."
