"""Pages whose URL holds a token (claim, its 410 page, the portal home) and the claim that sets
the session cookie: framed by nobody, cached by nobody, leaking no URL to the logo's origin,
and still able to render. Oversized request headers are refused with 431."""

from __future__ import annotations

import re

import httpx
import pytest

from services.common.settings import ApiSettings
from services.invite_service.api.app import create_app
from services.invite_service.api.edge import server_options
from tests.integration.conftest import auth
from tests.integration.live_server import live_server

JSON = {"Accept": "application/json"}
LOGO = "https://cdn.example.com/pride/logo.png"


@pytest.fixture
async def claim_path(api, staff_token, pro_workspace) -> str:
    headers = auth(staff_token(pro_workspace))
    branded = await api.put(f"/v1/workspaces/{pro_workspace}", headers=headers, json={"branding": {"logo_url": LOGO}})
    assert branded.status_code == 200
    invited = await api.post(f"/v1/workspaces/{pro_workspace}/invitations", headers=headers,
                             json={"email": "tess@example.com", "name": "Tess"})
    assert invited.status_code == 201
    access = api.app.state.portal_access
    link = access.claim_link("http://testserver", access.repository.get(invited.json()["invitation_id"]))
    return link.removeprefix("http://testserver")


def _csp(response: httpx.Response) -> dict[str, str]:
    directives = (d.strip().split(None, 1) for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: (d[1] if len(d) > 1 else "") for d in directives}


def assert_token_page_headers(response: httpx.Response) -> None:
    assert _csp(response)["frame-ancestors"] == "'none'"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def assert_page_works_under_its_csp(page: httpx.Response) -> None:
    """What the templates use is what the policy allows: inline style, https images, forms to us."""
    csp = _csp(page)
    assert csp["default-src"] == "'none'"
    assert "<script" not in page.text and 'rel="stylesheet"' not in page.text
    if "<style>" in page.text:
        assert "'unsafe-inline'" in csp["style-src"]
    for src in re.findall(r'<img[^>]* src="([^"]+)"', page.text):
        assert src.startswith("https://") and "https:" in csp["img-src"].split()
    for action in re.findall(r'<form[^>]* action="([^"]+)"', page.text):
        assert action.startswith("/") and not action.startswith("//") and "'self'" in csp["form-action"]


async def test_the_claim_page_its_post_and_the_home_page(api, claim_path):
    page = await api.get(claim_path)
    assert page.status_code == 200 and LOGO in page.text
    assert_token_page_headers(page)
    assert_page_works_under_its_csp(page)

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    claimed = await api.post(claim_path, data={"csrf_token": csrf})  # the page's form: 303 with the session cookie
    assert claimed.status_code == 303 and "porchlight_session=" in claimed.headers["set-cookie"]
    assert_token_page_headers(claimed)

    home = await api.get(claimed.headers["location"])  # with the cookie the claim set
    assert home.status_code == 200 and "Welcome" in home.text
    assert_token_page_headers(home)
    assert_page_works_under_its_csp(home)


async def test_the_410_page_and_the_json_claim(api, claim_path):
    claimed = await api.post(claim_path, headers=JSON)
    assert claimed.status_code == 200 and "porchlight_session=" in claimed.headers["set-cookie"]
    assert_token_page_headers(claimed)
    gone = await api.get(claim_path)
    assert gone.status_code == 410 and "no longer valid" in gone.text
    assert_token_page_headers(gone)
    assert_page_works_under_its_csp(gone)
    api.cookies.clear()
    signed_out_home = await api.get(claim_path.split("/claim/")[0] + "/")
    assert signed_out_home.status_code == 401
    assert_token_page_headers(signed_out_home)


async def test_the_staff_api_is_not_sniffed_and_keeps_its_own_caching(api, staff_token, pro_workspace):
    response = await api.get(f"/v1/workspaces/{pro_workspace}", headers=auth(staff_token(pro_workspace)))
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers and "cache-control" not in response.headers


async def _assert_header_limit(client: httpx.AsyncClient, limit: int) -> None:
    fits = await client.get("/healthz", headers={"Cookie": "c=" + "x" * (limit // 2)})
    assert fits.status_code == 200
    for path in ("/healthz", "/portal/any/claim/abc"):
        refused = await client.get(path, headers={"Cookie": "c=" + "x" * (limit + 1)})
        assert refused.status_code == 431, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "headers_too_large"
        assert refused.headers["x-content-type-options"] == "nosniff"
    assert "instance" not in refused.json()  # a portal path holds a token: never echoed


async def test_oversized_request_headers_are_refused_with_431(api):
    await _assert_header_limit(api, api.app.state.settings.max_header_bytes)


async def test_uvicorn_refuses_oversized_request_headers_with_431(base_env):
    settings = ApiSettings(**{k.lower(): v for k, v in base_env.items()}, max_header_bytes=8192)
    async with live_server(create_app(settings), **server_options(settings)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            await _assert_header_limit(client, settings.max_header_bytes)
