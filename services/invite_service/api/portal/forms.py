"""What every portal form shares: CSRF protection, reading a form or JSON body, rendering a
page that carries a form, and the answer to a successful sign-in.

CSRF is a signed double-submit: a page with a form sets a random `porchlight_csrf` cookie
and puts HMAC(secret key, cookie) in a hidden field; a form POST must bring both, and they
must match. Another site can make a browser POST a form here, but it can neither read
nor set our cookie, so it cannot produce the pair. API callers need no token: a browser
only sends `Content-Type: application/json` across sites after a CORS preflight, which
this API never grants; and a bodiless POST asking for JSON can only come from script,
whose cross-site response may not set our SameSite cookies nor carry them. What a form
can send (urlencoded, multipart, text/plain, or a page's bodiless POST) needs the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.common.problems import PROBLEM_JSON, PROBLEM_REF, Problem, problem_response
from services.invite_service import sessions

templates = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")


def text_on(background: str | None) -> str:
    """Black or white, whichever reads better (WCAG contrast) on a #RRGGBB brand colour."""
    try:
        channels = [int((background or "")[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    except ValueError:
        return "#ffffff"
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#ffffff" if (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.05) else "#111111"


templates.env.filters["text_on"] = text_on

CSRF_COOKIE = "porchlight_csrf"
CSRF_FIELD = "csrf_token"
MAX_FIELD = 1000  # longer than any email, password or code the forms take


def _sign(key: bytes, value: str) -> str:
    mac = hmac.new(key, f"csrf|{value}".encode(), hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def page_or_problem(description: str) -> dict[str, Any]:
    """An error response of a portal route, in the OpenAPI document: a page, or problem
    details for `Accept: application/json`."""
    return {"description": description, "content": {"text/html": {}, PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


async def read_body(request: Request) -> dict[str, str]:
    """The fields of a form or JSON object body, as strings (validated by the caller's model)."""
    if is_json(request):
        try:
            data = await request.json()
        except ValueError:
            raise Problem(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise Problem(422, "validation_error", "Invalid request", "The body must be a JSON object.")
        return {k: v if isinstance(v, str) else str(v) for k, v in data.items() if v is not None}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}


def _needs_token(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type:
        return content_type in _FORM_TYPES or content_type != "application/json"
    return not wants_json(request)


def check_csrf(request: Request, body: dict[str, str], key: bytes) -> Problem | None:
    """None when the POST may proceed, else the 403 to answer."""
    if not _needs_token(request):
        return None
    cookie = request.cookies.get(CSRF_COOKIE, "")
    token = body.get(CSRF_FIELD, "")
    if cookie and token and len(cookie) <= 100 and hmac.compare_digest(_sign(key, cookie), token):
        return None
    return Problem(403, "csrf_failed", "Form expired",
                   "The form expired or did not come from this site; reload the page and try again.")


def render(request: Request, access: Any, ws: str, template: str, ctx: dict[str, Any], status_code: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """A page whose forms carry the CSRF token; sets the cookie it pairs with when missing."""
    key = access.secret_key
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = not cookie or len(cookie) > 100
    if fresh:
        cookie = secrets.token_urlsafe(24)
    context = {"csrf_field": CSRF_FIELD, "csrf_token": _sign(key, cookie), "ws": ws, **ctx}
    response = templates.TemplateResponse(request, template, context, status_code=status_code,
                                          headers={"Cache-Control": "no-store", **(headers or {})})
    if fresh:
        response.set_cookie(CSRF_COOKIE, cookie, path=f"/portal/{ws}", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https" or access.public_https)
    return response


def _secure(request: Request, settings: Any) -> bool:
    # Behind a TLS-terminating proxy the request itself is plain HTTP; the public URL is
    # what the browser sees.
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


def client_of(request: Request) -> tuple[str | None, str | None]:
    """The client's address (edge.py resolved trusted proxies) and user agent, as recorded."""
    return (request.client.host if request.client else None), (request.headers.get("user-agent") or "")[:300] or None


def signed_in(request: Request, ws: str, result: Any, settings: Any) -> Response:
    """After any sign-in: on to the host portal (with its one-time code) or ours, with the cookie."""
    body: Response
    if wants_json(request):
        payload = {"account_id": str(result.account_id), "status": result.status, "position": result.position,
                   "redirect_to": result.redirect_to or f"/portal/{ws}/"}
        body = JSONResponse(payload, headers={"Cache-Control": "no-store"})
    else:
        body = RedirectResponse(result.redirect_to or f"/portal/{ws}/", status_code=303,
                                headers={"Cache-Control": "no-store"})
    body.set_cookie(sessions.COOKIE_NAME, result.session, max_age=int(settings.session_absolute_days * 86400),
                    path=f"/portal/{ws}", httponly=True, secure=_secure(request, settings), samesite="lax")
    return body


def problem_or_page(request: Request, access: Any, ws: str, problem: Problem, template: str,
                    ctx: dict[str, Any]) -> Response:
    """Problem details for `Accept: application/json`, else the page (with the problem's status)."""
    if wants_json(request):
        return problem_response(problem, request)
    return render(request, access, ws, template, {"error": problem.detail, **ctx}, status_code=problem.status,
                  headers=problem.headers)
