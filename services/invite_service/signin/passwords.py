"""Password rules (NIST SP 800-63B) and hashing (argon2id).

Rules: at least 12 characters, any characters, no composition rules; refused when it
contains the email's local part or the client's name, or is on the common-passwords list
shipped beside this module. Each refusal says why, so the page can tell the client.

Hashing: argon2id with OWASP's minimum memory (19 MiB) and four passes: about 50 ms of CPU
per check on an idle core here (two passes measured 25 ms): slow for a guesser with a
stolen table, quick enough for a sign-in. The parameters live in each hash, so hashes made
with other settings still verify.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; a megabyte "password" is only a way to burn CPU
_COMMON = Path(__file__).with_name("common_passwords.txt")

_hasher = PasswordHasher(time_cost=4, memory_cost=19_456, parallelism=1)
# Verified against when there is no hash to check, so an unknown email costs what a known one does.
_DUMMY_HASH = _hasher.hash("no account has this password")


@functools.cache
def common_passwords() -> frozenset[str]:
    return frozenset(line.strip().lower() for line in _COMMON.read_text().splitlines() if line.strip() and not line.startswith("#"))


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def problem_with(password: str, email: str, name: str | None) -> str | None:
    """Why `password` is refused, in a sentence for the page, or None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered, squashed = password.lower(), _squash(password)
    local = email.split("@", 1)[0].lower()
    if len(local) >= 3 and (local in lowered or _squash(local) in squashed):
        return "Don't use your email address in your password."
    for part in [name or "", *(name or "").split()]:
        if len(_squash(part)) >= 3 and _squash(part) in squashed:
            return "Don't use your name in your password."
    if lowered in common_passwords() or squashed in common_passwords():
        return "That password is too common; choose one that others are unlikely to use."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash: argon2 against a dummy when there is none."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password[:MAX_LENGTH]) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
