"""Click through every sign-in method as a client would, in Chromium, without JavaScript
doing anything on our side (the pages have none): claim with a password, magic-link
sign-in, code entry, sign-out. Form fields are found by their labels, as a screen reader
finds them."""

from __future__ import annotations

from uuid import UUID

from services.common import tokens
from tests.conftest import SECRET_KEY, STAFF_JWT_SECRET
from services.common.staff_auth import make_staff_token
from tests.helpers import unique

KEY = SECRET_KEY.encode()


async def _workspace(http, method: str) -> tuple[str, dict[str, str]]:
    ws = unique("ws")
    headers = {"Authorization": f"Bearer {make_staff_token(STAFF_JWT_SECRET, sub='owner-1', ws=ws, role='owner')}"}
    put = await http.put(f"/v1/workspaces/{ws}", headers=headers, json={
        "name": "Harbor Charters", "plan": "pro", "portal_enabled": True, "sign_in_method": method,
        "branding": {"sender_name": "Harbor Charters", "brand_color": "#0B7A75"}})
    assert put.status_code == 201, put.text
    return ws, headers


async def _invite(http, ws: str, headers) -> tuple[str, str]:
    email = f"{unique('ana')}@example.com"
    invited = await http.post(f"/v1/workspaces/{ws}/invitations", headers=headers,
                              json={"email": email, "name": "Ana Lima", "role": "charter_client"})
    assert invited.status_code == 201, invited.text
    return email, invited.json()["account_id"]


def _claim_link(base: str, app, account_id: str) -> str:
    access = app.state.portal_access
    invitation = access.repository.get(access.get_account(UUID(account_id)).invitation_id)
    return access.claim_link(base, invitation)


async def _claimed(http, base, app, ws, headers) -> tuple[str, str]:
    email, account_id = await _invite(http, ws, headers)
    assert (await http.post(_claim_link(base, app, account_id), headers={"Accept": "application/json"}, json={})).status_code == 200
    return email, account_id


async def test_claim_with_a_password(browser, portal, http, shots):
    base, app = portal
    ws, headers = await _workspace(http, "password")
    _, account_id = await _invite(http, ws, headers)
    page = await browser.new_page()
    await page.goto(_claim_link(base, app, account_id))
    await shots(page, "1-claim-page")
    await page.get_by_label("Choose a password").fill("ana-lima-2026!")
    await page.get_by_role("button", name="Accept invitation").click()
    await page.get_by_text("Don't use your name in your password.").wait_for()
    await shots(page, "2-password-refused")
    await page.get_by_label("Choose a password").fill("copper kettle on the harbour wall")
    await page.get_by_role("button", name="Accept invitation").click()
    await page.get_by_role("heading", name="Welcome, Ana Lima").wait_for()
    await shots(page, "3-signed-in")
    # Then out and back in with the password.
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_text("You are not signed in.").wait_for()
    await shots(page, "4-signed-out-offers-sign-in")
    assert app.state.portal_access.get_account(UUID(account_id)).status == "active"


async def test_magic_link_sign_in(browser, portal, http, shots):
    base, app = portal
    ws, headers = await _workspace(http, "magic_link")
    email, account_id = await _claimed(http, base, app, ws, headers)
    page = await browser.new_page()
    await page.goto(f"{base}/portal/{ws}/sign-in")
    await shots(page, "1-sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await page.get_by_role("heading", name="Check your email").wait_for()
    await shots(page, "2-check-your-email")
    account = app.state.portal_access.get_account(UUID(account_id))
    link = tokens.magic_link(base, ws, tokens.make_token(KEY, tokens.MAGIC, account.id, account.magic_nonce))
    await page.goto(link)
    await shots(page, "3-link-page")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Welcome, Ana Lima").wait_for()
    await shots(page, "4-signed-in")
    await page.goto(link)  # used: the 410 page, with the sign-in form
    await page.get_by_role("heading", name="That link is no longer valid.").wait_for()
    await shots(page, "5-link-used")


async def test_code_entry(browser, portal, http, shots):
    base, app = portal
    ws, headers = await _workspace(http, "code")
    email, account_id = await _claimed(http, base, app, ws, headers)
    page = await browser.new_page()
    await page.goto(f"{base}/portal/{ws}/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Email me a code").click()
    await page.get_by_role("heading", name="Enter your code").wait_for()
    await shots(page, "1-enter-code")
    account = app.state.portal_access.get_account(UUID(account_id))
    code = tokens.sign_in_code(KEY, account.id, account.code_nonce)
    await page.get_by_label("6-digit code").fill(f"{(int(code) + 1) % 1_000_000:06d}")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("alert").wait_for()
    await shots(page, "2-wrong-code")
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Welcome, Ana Lima").wait_for()
    await shots(page, "3-signed-in")
