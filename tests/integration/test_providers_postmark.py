"""The Postmark provider against a local stand-in that checks requests as Postmark documents
them: success, and each class of documented error mapped to what the ledger does with it."""

from __future__ import annotations

import uuid

import pytest

from deploy import embedded
from services.common.settings import NotifierSettings
from services.notifier.providers import Email, PostmarkProvider, email_provider
from tests.integration.provider_stubs import postmark_stub


def an_email(to: str = "ana@example.com", reply_to: str | None = "desk@pride.example") -> Email:
    return Email(to=to, from_address="portal@pride.example", from_name="Pride Travelers", reply_to=reply_to,
                 subject="Pride Travelers invited you", html="<p>Hello</p>", text="Hello", delivery_id=uuid.uuid4())


@pytest.fixture
async def postmark():
    async with postmark_stub() as stub:
        provider = PostmarkProvider(api_url=stub.base_url, server_token=stub.server_token)
        try:
            yield stub, provider
        finally:
            await provider.close()


async def test_an_email_is_posted_as_postmark_documents_it(postmark):
    stub, provider = postmark
    email = an_email()
    result = await provider.send(email)
    assert result.status == "sent" and result.provider == "postmark" and result.provider_message_id
    assert stub.refused == []
    [body] = stub.accepted
    assert body == {
        "From": "Pride Travelers <portal@pride.example>", "To": "ana@example.com",
        "Subject": "Pride Travelers invited you", "HtmlBody": "<p>Hello</p>", "TextBody": "Hello",
        "ReplyTo": "desk@pride.example", "MessageStream": "outbound",
        "Metadata": {"delivery_id": str(email.delivery_id)},
    }
    await provider.send(an_email(reply_to=None))
    assert "ReplyTo" not in stub.accepted[1]


async def test_an_inactive_recipient_is_permanent_and_marks_the_address(postmark):
    stub, provider = postmark
    stub.answer_next(422, {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive."})
    result = await provider.send(an_email())
    assert (result.status, result.inactive_recipient) == ("permanent", True)
    assert result.reason.startswith("422 ErrorCode 406: You tried to send")


@pytest.mark.parametrize(("status", "code", "message"), [
    (422, 300, "Invalid email request"),
    (422, 400, "Sender signature not defined for From address."),
    (422, 412, "Your account is pending approval."),
    (401, 10, "No Account or Server API tokens were supplied in the HTTP headers."),
])
async def test_other_client_errors_are_permanent(postmark, status, code, message):
    stub, provider = postmark
    stub.answer_next(status, {"ErrorCode": code, "Message": message})
    result = await provider.send(an_email())
    assert (result.status, result.inactive_recipient) == ("permanent", False)
    assert result.reason == f"{status} ErrorCode {code}: {message}"


async def test_a_wrong_server_token_is_refused_by_the_stub_and_never_in_the_reason(postmark):
    stub, _ = postmark
    provider = PostmarkProvider(api_url=stub.base_url, server_token="not-the-token")
    try:
        result = await provider.send(an_email())
    finally:
        await provider.close()
    assert result.status == "permanent" and "ErrorCode 10" in result.reason and "not-the-token" not in result.reason
    assert stub.refused and not stub.accepted


@pytest.mark.parametrize(("status", "body"), [
    (429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}),
    (500, {"ErrorCode": 0, "Message": "Internal server error"}),
    (503, {}),
])
async def test_rate_limits_and_server_errors_are_transient(postmark, status, body):
    stub, provider = postmark
    stub.answer_next(status, body)
    result = await provider.send(an_email())
    assert result.status == "transient" and result.reason.startswith(str(status))


async def test_email_provider_postmark_is_built_from_the_settings(postmark):
    stub, _ = postmark
    provider = email_provider(NotifierSettings(
        database_url="postgresql://unused@localhost/unused", kafka_bootstrap_servers="unused:9092",
        porchlight_secret_key="s" * 40, email_provider="postmark", postmark_api_url=stub.base_url,
        postmark_server_token=stub.server_token, postmark_message_stream="invites",
    ))
    try:
        assert isinstance(provider, PostmarkProvider) and (await provider.send(an_email())).status == "sent"
    finally:
        await provider.close()
    assert stub.accepted[0]["MessageStream"] == "invites"


async def test_postmark_unreachable_is_transient():
    provider = PostmarkProvider(api_url=f"http://127.0.0.1:{embedded.free_port()}", server_token="t")
    try:
        result = await provider.send(an_email())
    finally:
        await provider.close()
    assert result.status == "transient" and result.provider == "postmark" and "ConnectError" in result.reason


async def test_sends_share_a_kept_connection(postmark):
    stub, provider = postmark
    for _ in range(3):
        assert (await provider.send(an_email())).status == "sent"
    assert len(stub.peers) == 3 and len(set(stub.peers)) == 1
