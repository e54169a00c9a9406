"""The SMS provider against a local stand-in that checks requests as Twilio documents them:
basic auth with the account sid, form-encoded To/From/Body, 201 with the message sid."""

from __future__ import annotations

import uuid

import pytest

from deploy import embedded
from services.common.settings import NotifierSettings
from services.notifier.providers import Sms, TwilioProvider, sms_provider
from tests.integration.provider_stubs import twilio_error, twilio_stub

BODY = "Pride Travelers: your sign-in code is 123456"


def an_sms(to: str = "+15005550006") -> Sms:
    return Sms(to=to, body=BODY, delivery_id=uuid.uuid4())


def settings_for(stub, **overrides) -> NotifierSettings:
    return NotifierSettings(
        database_url="postgresql://unused@localhost/unused", kafka_bootstrap_servers="unused:9092",
        porchlight_secret_key="s" * 40, twilio_api_url=stub.base_url, twilio_account_sid=stub.account_sid,
        twilio_auth_token=stub.auth_token, twilio_from="+15005550006", **overrides,
    )


@pytest.fixture
async def twilio():
    async with twilio_stub() as stub:
        provider = sms_provider(settings_for(stub))
        try:
            yield stub, provider
        finally:
            await provider.close()


async def test_an_sms_is_posted_as_twilio_documents_it(twilio):
    stub, provider = twilio
    result = await provider.send(an_sms("+14155550100"))
    assert stub.refused == []
    assert stub.accepted == [{"To": "+14155550100", "From": "+15005550006", "Body": BODY}]
    assert result.status == "sent" and result.provider == "twilio" and result.provider_message_id.startswith("SM")


async def test_a_messaging_service_is_sent_as_one():
    async with twilio_stub() as stub:
        provider = sms_provider(settings_for(stub).model_copy(update={"twilio_from": "MG" + "0" * 32}))
        try:
            assert (await provider.send(an_sms())).status == "sent"
        finally:
            await provider.close()
    assert stub.accepted[0]["MessagingServiceSid"] == "MG" + "0" * 32 and "From" not in stub.accepted[0]


@pytest.mark.parametrize(("status", "code", "message"), [
    (400, 21211, "The 'To' number +1555 is not a valid phone number."),
    (400, 21610, "Attempt to send to unsubscribed recipient"),
    (403, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"),
])
async def test_client_errors_are_permanent_with_twilios_code(twilio, status, code, message):
    stub, provider = twilio
    stub.answer_next(*twilio_error(status, code, message))
    result = await provider.send(an_sms())
    assert result.status == "permanent" and result.reason == f"{status} code {code}: {message}"


async def test_wrong_credentials_are_refused_and_the_token_is_not_in_the_reason(twilio):
    stub, _ = twilio
    provider = TwilioProvider(api_url=stub.base_url, account_sid=stub.account_sid, auth_token="wrong-token",
                              sender="+15005550006")
    try:
        result = await provider.send(an_sms())
    finally:
        await provider.close()
    assert result.status == "permanent" and "code 20003" in result.reason and "wrong-token" not in result.reason
    assert stub.refused and not stub.accepted


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
async def test_rate_limits_and_server_errors_are_transient(twilio, status, code):
    stub, provider = twilio
    stub.answer_next(*twilio_error(status, code, "try later"))
    assert (await provider.send(an_sms())).status == "transient"


async def test_twilio_unreachable_is_transient():
    provider = TwilioProvider(api_url=f"http://127.0.0.1:{embedded.free_port()}", account_sid="AC1", auth_token="t",
                              sender="+15005550006")
    try:
        assert (await provider.send(an_sms())).status == "transient"
    finally:
        await provider.close()


def test_no_sms_provider_without_twilio_settings_and_a_partial_one_is_refused():
    base = {"database_url": "postgresql://u@h/d", "kafka_bootstrap_servers": "h:9092", "porchlight_secret_key": "s" * 40}
    assert sms_provider(NotifierSettings(**base)) is None
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM"):
        NotifierSettings(**base, twilio_account_sid="AC1")
