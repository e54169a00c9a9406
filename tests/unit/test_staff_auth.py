"""Staff tokens: only HS256 with our secret, with every claim, unexpired, a known role."""

import time

import jwt
import pytest

from services.common.problems import Problem
from services.common.staff_auth import decode_staff_token, make_staff_token

SECRET = "s" * 40


def test_a_valid_token_gives_its_claims_and_actor():
    claims = decode_staff_token(make_staff_token(SECRET, sub="u1", ws="pride", role="dispatcher"), SECRET)
    assert (claims.sub, claims.ws, claims.role, claims.can_write) == ("u1", "pride", "dispatcher", True)
    assert claims.actor == {"kind": "staff", "id": "u1", "reason": None}


@pytest.mark.parametrize(
    "token",
    [
        make_staff_token("x" * 40, sub="u1", ws="pride", role="owner"),  # another key
        jwt.encode({"sub": "u1", "ws": "pride", "role": "owner"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"sub": "u1", "ws": "pride", "role": "root", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "u1", "ws": "pride", "role": "owner", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "not-a-jwt",
    ],
    ids=["other-key", "no-exp", "unknown-role", "alg-none", "garbage"],
)
def test_bad_tokens_are_401(token):
    with pytest.raises(Problem) as raised:
        decode_staff_token(token, SECRET)
    assert raised.value.status == 401 and raised.value.code == "unauthorized"


def test_an_expired_token_says_so():
    token = make_staff_token(SECRET, sub="u1", ws="pride", role="owner", ttl_seconds=-10)
    with pytest.raises(Problem) as raised:
        decode_staff_token(token, SECRET)
    assert "expired" in raised.value.detail


def test_a_token_checked_before_still_expires_on_time(monkeypatch):
    from types import SimpleNamespace

    from services.common import staff_auth

    token = make_staff_token(SECRET, sub="u1", ws="pride", role="owner", ttl_seconds=60)
    claims = decode_staff_token(token, SECRET)  # verified, and remembered
    monkeypatch.setattr(staff_auth, "time", SimpleNamespace(time=lambda: claims.exp + 1))
    with pytest.raises(Problem) as raised:
        decode_staff_token(token, SECRET)
    assert raised.value.status == 401 and "expired" in raised.value.detail


def test_a_remembered_token_is_not_accepted_under_another_key():
    token = make_staff_token(SECRET, sub="u1", ws="pride", role="owner")
    decode_staff_token(token, SECRET)
    with pytest.raises(Problem) as raised:
        decode_staff_token(token, "k" * 40)
    assert raised.value.status == 401
