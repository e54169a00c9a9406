"""Links are derived from a key and a nonce; only the key holder can make or check one."""

from uuid import uuid4

from services.common import tokens

KEY = b"k" * 32


def test_token_round_trip_and_verification():
    aggregate_id, nonce = uuid4(), tokens.new_nonce()
    token = tokens.make_token(KEY, tokens.CLAIM, aggregate_id, nonce)
    parsed_id, mac = tokens.parse_token(token)
    assert parsed_id == aggregate_id
    assert tokens.verify_token(KEY, tokens.CLAIM, aggregate_id, nonce, mac)


def test_a_new_nonce_other_key_or_purpose_voids_the_token():
    aggregate_id, nonce = uuid4(), tokens.new_nonce()
    _, mac = tokens.parse_token(tokens.make_token(KEY, tokens.CLAIM, aggregate_id, nonce))
    assert not tokens.verify_token(KEY, tokens.CLAIM, aggregate_id, tokens.new_nonce(), mac)
    assert not tokens.verify_token(b"x" * 32, tokens.CLAIM, aggregate_id, nonce, mac)
    assert not tokens.verify_token(KEY, "magic", aggregate_id, nonce, mac)


def test_malformed_tokens_parse_to_none():
    for bad in ("", "nodot", "!!!.???", "a" * 200 + "." + "b", "AAAA.AAAA"):
        assert tokens.parse_token(bad) is None


def test_nonces_do_not_repeat():
    assert len({tokens.new_nonce() for _ in range(1000)}) == 1000


def _same_bytes_other_spelling(text: str) -> str:
    """`text` with its last character swapped for one that decodes to the same bytes: the
    22 characters of a 16-byte id carry 4 bits that no byte uses."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(text[-1])
    return text[:-1] + alphabet[index ^ 1]


def test_only_the_canonical_spelling_of_a_token_parses():
    token = tokens.make_token(KEY, tokens.CLAIM, uuid4(), tokens.new_nonce())
    head, tail = token.split(".")
    variant = f"{_same_bytes_other_spelling(head)}.{tail}"
    assert tokens._unb64(variant.split(".")[0]) == tokens._unb64(head)  # the variant means the same bytes
    # Padding, the standard alphabet's + and /, and characters the decoder would skip.
    for spelling in (variant, f"{head}==.{tail}", f"{head}.{tail}=", f"+/{token[2:]}", f"{head}.{tail}\n",
                     f"{head} .{tail}", f"{head}.{tail[:5]}!{tail[5:]}"):
        assert tokens.parse_token(spelling) is None, spelling
    assert tokens.parse_token(token) is not None
