"""Links and codes, derived rather than stored.

    token = b64(aggregate id) "." b64(HMAC-SHA256(key, purpose | aggregate id | nonce))

Events keep only the nonce and the expiry. Whoever holds the key (the API, to check a
claim; the notifier, to put the link in the email) can recompute the token; nobody who
reads the event log or Kafka can. Claiming consumes the nonce and a resend issues a new
one, so an old link stops matching.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from uuid import UUID

CLAIM = "claim"  # invite links: aggregate id = the invitation
RESET = "reset"  # password-reset links: aggregate id = the account
MAGIC = "magic"  # sign-in links: aggregate id = the account
CODE = "code"  # one-time sign-in codes: aggregate id = the account
MAC_BYTES = 24  # 192 bits: far past guessing, and keeps links short


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def new_nonces(count: int) -> list[str]:
    """`count` nonces like `new_nonce`'s from one read of the system's randomness: a bulk
    invite needs 10,000, and each separate read releases and re-takes the GIL."""
    raw = secrets.token_bytes(16 * count)
    return [_b64(raw[i : i + 16]) for i in range(0, len(raw), 16)]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical_unb64(text: str) -> bytes:
    """The bytes `text` spells, only if `text` is the one spelling `_b64` makes of them.

    The decoder is lenient: it takes padding, the standard alphabet's `+` and `/`, skips
    characters outside the alphabet and ignores the unused low bits of the last character.
    Each of those gives one link many URLs, which defeats anything keyed on the URL
    (caches, logs, rate limits, a link reported as leaked)."""
    raw = _unb64(text)
    if _b64(raw) != text:
        raise ValueError("not the canonical spelling")
    return raw


def _mac(key: bytes, purpose: str, aggregate_id: UUID, nonce: str) -> bytes:
    message = f"{purpose}|{aggregate_id}|{nonce}".encode()
    return hmac.digest(key, message, "sha256")[:MAC_BYTES]  # one call into OpenSSL, no HMAC object


def make_token(key: bytes, purpose: str, aggregate_id: UUID, nonce: str) -> str:
    return f"{_b64(aggregate_id.bytes)}.{_b64(_mac(key, purpose, aggregate_id, nonce))}"


def parse_token(token: str) -> tuple[UUID, bytes] | None:
    """The aggregate id and MAC a token claims to be, or None if it is not even well formed."""
    head, sep, tail = token.partition(".")
    if not sep or len(token) > 128:
        return None
    try:
        return UUID(bytes=_canonical_unb64(head)), _canonical_unb64(tail)
    except (ValueError, binascii.Error):
        return None


def verify_token(key: bytes, purpose: str, aggregate_id: UUID, nonce: str, mac: bytes) -> bool:
    return hmac.compare_digest(_mac(key, purpose, aggregate_id, nonce), mac)


def claim_link(base_url: str, workspace: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/portal/{workspace}/claim/{token}"


def reset_link(base_url: str, workspace: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/portal/{workspace}/password/reset/{token}"


def magic_link(base_url: str, workspace: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/portal/{workspace}/magic/{token}"


def sign_in_code(key: bytes, account_id: UUID, nonce: str) -> str:
    """The 6-digit code of a SignInCodeIssued event: derived, so nothing stores it. The
    modulo bias over 2^64 is far below anything a 5-try lockout lets an attacker use."""
    digest = hmac.digest(key, f"{CODE}|{account_id}|{nonce}".encode(), "sha256")
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def verify_sign_in_code(key: bytes, account_id: UUID, nonce: str, code: str) -> bool:
    return hmac.compare_digest(sign_in_code(key, account_id, nonce).encode(), code.strip().encode())
