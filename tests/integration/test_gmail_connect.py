"""Staff connect Gmail through the staff API (real PostgreSQL), and a manual invite goes out
through the Gmail stand-in as them; a token Gmail refuses falls back to Postmark, silently,
and the result says so. The token is never answered, logged or stored in the clear."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.common.gmail_tokens import GmailToken, GmailTokens, TokenSeal
from services.common.settings import NotifierSettings
from services.notifier.providers import Email, GmailRouter, PostmarkProvider, email_provider
from tests.conftest import SECRET_KEY
from tests.helpers import unique
from tests.integration.conftest import auth
from tests.integration.provider_stubs import gmail_stub, google_error, postmark_stub


def an_email(to: str = "ana@example.com") -> Email:
    return Email(to=to, from_address="portal@pride.example", from_name="Pat at Pride Travelers",
                 reply_to="desk@pride.example", subject="Pat at Pride Travelers invited you",
                 html="<p>Hello</p>", text="Hello", delivery_id=uuid.uuid4())


def path(ws: str, staff_id: str) -> str:
    return f"/v1/workspaces/{ws}/staff/{staff_id}/gmail"


@pytest.fixture
async def stubs():
    async with gmail_stub() as gmail, postmark_stub() as postmark:
        yield gmail, postmark


@pytest.fixture
async def router(stubs, pg_pool):
    gmail, postmark = stubs
    transactional = PostmarkProvider(api_url=postmark.base_url, server_token=postmark.server_token)
    router = GmailRouter(transactional=transactional, tokens=GmailTokens(pg_pool, TokenSeal(SECRET_KEY.encode())),
                         api_url=gmail.base_url)
    yield router
    await router.close()
    await transactional.close()


async def test_a_connected_staff_member_sends_through_gmail_and_a_refused_token_falls_back(
    api, pro_workspace, staff_token, pg_pool, stubs, router, caplog
):
    caplog.set_level(logging.DEBUG)
    gmail, postmark = stubs
    ws, staff_id, token, refresh = pro_workspace, "staff-pat", "ya29." + secrets.token_urlsafe(40), secrets.token_urlsafe(30)
    gmail.valid_tokens.add(token)
    expires_at = datetime.now(UTC) + timedelta(hours=1)

    response = await api.put(path(ws, staff_id), headers=auth(staff_token(ws, "dispatcher")),
                             json={"access_token": token, "refresh_token": refresh, "expires_at": expires_at.isoformat()})
    assert response.status_code == 200, response.text
    assert response.json() == {"staff_id": staff_id, "connected": True,
                               "expires_at": expires_at.isoformat().replace("+00:00", "Z")}
    row = await pg_pool.fetchrow("SELECT * FROM staff_gmail_tokens WHERE workspace = $1 AND staff_id = $2", ws, staff_id)
    assert token.encode() not in bytes(row["sealed"]) and refresh.encode() not in bytes(row["sealed"])

    sent = await router.send(an_email(), workspace=ws, staff_id=staff_id)
    assert (sent.status, sent.provider, sent.fell_back_from) == ("sent", "gmail", None) and sent.provider_message_id
    [message] = gmail.accepted
    assert message["To"] == "ana@example.com" and message["Reply-To"] == "desk@pride.example"
    assert message["Subject"] == "Pat at Pride Travelers invited you"
    assert message.get_body(("plain",)).get_content().strip() == "Hello"
    assert gmail.bearers_seen == [token] and postmark.accepted == []

    gmail.valid_tokens.clear()  # Google expired or revoked it: Gmail answers 401
    email = an_email()
    fell_back = await router.send(email, workspace=ws, staff_id=staff_id)
    assert (fell_back.status, fell_back.provider, fell_back.fell_back_from) == ("sent", "postmark", "gmail")
    assert [m["Metadata"] for m in postmark.accepted] == [{"delivery_id": str(email.delivery_id)}]
    assert gmail.refused[-1][0] == 401

    logged = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "gmail not used for" in logged  # the fallback is visible to ops, by who, without the token
    assert token not in logged and refresh not in logged


async def test_gmail_forbidding_the_token_also_falls_back(api, pro_workspace, staff_token, stubs, router):
    gmail, postmark = stubs
    ws, token = pro_workspace, secrets.token_urlsafe(30)
    gmail.valid_tokens.add(token)
    assert (await api.put(path(ws, "staff-1"), headers=auth(staff_token(ws)), json={"access_token": token})).status_code == 200
    gmail.answer_next(*google_error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes."))
    result = await router.send(an_email(), workspace=ws, staff_id="staff-1")
    assert (result.provider, result.fell_back_from, result.status) == ("postmark", "gmail", "sent")


@pytest.mark.parametrize(("answer", "status"), [
    (google_error(429, "RESOURCE_EXHAUSTED", "User-rate limit exceeded"), "transient"),
    (google_error(500, "INTERNAL", "Backend Error"), "transient"),
    (google_error(400, "INVALID_ARGUMENT", "Invalid To header"), "permanent"),
])
async def test_other_gmail_errors_are_mapped_like_other_providers(api, pro_workspace, staff_token, stubs, router,
                                                                  answer, status):
    gmail, postmark = stubs
    ws, token = pro_workspace, secrets.token_urlsafe(30)
    gmail.valid_tokens.add(token)
    await api.put(path(ws, "staff-1"), headers=auth(staff_token(ws)), json={"access_token": token, "expires_in": 3600})
    gmail.answer_next(*answer)
    result = await router.send(an_email(), workspace=ws, staff_id="staff-1")
    assert (result.status, result.provider, result.fell_back_from) == (status, "gmail", None)
    assert result.reason.startswith(str(answer[0])) and postmark.accepted == []


async def test_a_token_past_its_stored_expiry_falls_back_without_asking_gmail(api, pro_workspace, staff_token, stubs, router):
    gmail, postmark = stubs
    ws = pro_workspace
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (await api.put(path(ws, "staff-1"), headers=auth(staff_token(ws)),
                          json={"access_token": "old", "expires_at": past})).status_code == 200
    result = await router.send(an_email(), workspace=ws, staff_id="staff-1")
    assert (result.provider, result.fell_back_from) == ("postmark", "gmail") and gmail.bearers_seen == []


async def test_without_a_connected_gmail_or_a_staff_member_the_transactional_provider_sends(
    api, pro_workspace, staff_token, stubs, router
):
    gmail, postmark = stubs
    ws, token = pro_workspace, secrets.token_urlsafe(30)
    gmail.valid_tokens.add(token)
    for staff_id in (None, "staff-never-connected"):
        result = await router.send(an_email(), workspace=ws, staff_id=staff_id)
        assert (result.provider, result.fell_back_from) == ("postmark", None)
    # Connected, then disconnected: back to the workspace's provider, and DELETE is repeatable.
    await api.put(path(ws, "staff-1"), headers=auth(staff_token(ws)), json={"access_token": token})
    for _ in range(2):
        assert (await api.delete(path(ws, "staff-1"), headers=auth(staff_token(ws)))).status_code == 204
    result = await router.send(an_email(), workspace=ws, staff_id="staff-1")
    assert (result.provider, result.fell_back_from) == ("postmark", None) and gmail.bearers_seen == []


async def test_a_sealed_token_opens_only_for_its_own_row_and_key(pg_pool, pro_workspace):
    ws = pro_workspace
    tokens = GmailTokens(pg_pool, TokenSeal(SECRET_KEY.encode()))
    await tokens.put(ws, "staff-a", GmailToken("secret-a"), connected_by="staff-a")
    assert (await tokens.get(ws, "staff-a")).access_token == "secret-a"
    await pg_pool.execute(
        """INSERT INTO staff_gmail_tokens (workspace, staff_id, sealed, connected_by)
           SELECT workspace, 'staff-b', sealed, 'x' FROM staff_gmail_tokens WHERE workspace = $1 AND staff_id = 'staff-a'""",
        ws,
    )
    assert await tokens.get(ws, "staff-b") is None  # copied to another row: does not open
    other_key = GmailTokens(pg_pool, TokenSeal(b"another-secret-key-" + b"x" * 32))
    assert await other_key.get(ws, "staff-a") is None
    assert "secret-a" not in repr(await tokens.get(ws, "staff-a"))


async def test_who_may_connect_whose_gmail(api, pro_workspace, staff_token):
    ws, body = pro_workspace, {"access_token": "t-" + secrets.token_hex(8)}
    # An agent or viewer may connect only their own; owners, admins and dispatchers anyone's.
    forbidden = await api.put(path(ws, "staff-pat"), headers=auth(staff_token(ws, "agent", sub="staff-sam")), json=body)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden_role"
    assert (await api.delete(path(ws, "staff-pat"), headers=auth(staff_token(ws, "viewer", sub="staff-sam")))).status_code == 403
    own = await api.put(path(ws, "staff-sam"), headers=auth(staff_token(ws, "viewer", sub="staff-sam")), json=body)
    assert own.status_code == 200 and body["access_token"] not in own.text
    for role in ("owner", "admin", "dispatcher"):
        assert (await api.put(path(ws, "staff-pat"), headers=auth(staff_token(ws, role)), json=body)).status_code == 200
    assert (await api.put(path(ws, "staff-pat"), json=body)).status_code == 401
    other = unique("ws")
    assert (await api.put(path(other, "staff-pat"), headers=auth(staff_token(ws)), json=body)).status_code == 404
    missing = await api.put(path(other, "staff-pat"), headers=auth(staff_token(other)), json=body)
    assert missing.status_code == 404 and missing.json()["code"] == "workspace_not_found"


async def test_a_bad_body_is_refused_without_echoing_the_token(api, pro_workspace, staff_token):
    ws, token = pro_workspace, "tok-" + secrets.token_hex(8)
    for body in ({}, {"access_token": ""}, {"access_token": token, "expires_at": "2026-01-01T00:00:00"},
                 {"access_token": token, "expires_in": 60, "expires_at": "2026-01-01T00:00:00Z"},
                 {"access_token": token, "scope": "extra"}):
        response = await api.put(path(ws, "staff-1"), headers=auth(staff_token(ws)), json=body)
        assert response.status_code == 422 and response.json()["code"] == "validation_error", response.text
        assert token not in response.text


async def test_without_gmail_api_url_staff_gmail_is_not_used(api, pro_workspace, staff_token, stubs, pg_pool):
    gmail, postmark = stubs
    ws, token = pro_workspace, secrets.token_urlsafe(30)
    gmail.valid_tokens.add(token)
    await api.put(path(ws, "staff-1"), headers=auth(staff_token(ws)), json={"access_token": token})
    settings = NotifierSettings(
        database_url="postgresql://unused@localhost/unused", kafka_bootstrap_servers="unused:9092",
        porchlight_secret_key=SECRET_KEY, email_provider="postmark", postmark_api_url=postmark.base_url,
        postmark_server_token=postmark.server_token,
    )
    transactional = email_provider(settings)
    for gmail_api_url, provider in ((None, "postmark"), (gmail.base_url, "gmail")):
        router = GmailRouter.from_settings(settings.model_copy(update={"gmail_api_url": gmail_api_url}),
                                           pg_pool, transactional)
        try:
            result = await router.send(an_email(), workspace=ws, staff_id="staff-1")
        finally:
            await router.close()
        assert (result.status, result.provider, result.fell_back_from) == ("sent", provider, None)
    await transactional.close()
