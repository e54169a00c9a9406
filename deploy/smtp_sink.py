"""The development SMTP sink: accepts any mail, keeps it as .eml files, and shows it on a web page.

Used by `porchlight dev` when `SMTP_HOST` is not set, so invitations can be read in a browser
instead of being delivered. Interface:

    sink = SmtpSink(outbox_dir, smtp_port=1025, web_port=8025)  # host defaults to 127.0.0.1
    sink.start()    # returns once both servers listen; runs them in background threads
    ...             # mail sent to 127.0.0.1:1025 appears at http://127.0.0.1:8025/
    sink.stop()

    await serve_sink(outbox_dir, smtp_port, web_port)   # the same, until the task is cancelled

Web pages: `/` (newest first: time, from, to, subject), `/messages/{id}` (the HTML part in a
sandboxed iframe, the text part and the raw source), `/messages/{id}/html`, `/messages/{id}.eml`
and `/api/messages` (the list as JSON with each text part; `?to=` filters by recipient). Messages survive restarts: they are files in the outbox.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import jinja2
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from deploy.embedded import wait_for_port

_ID = re.compile(r"^[0-9]{20}-[0-9a-f]{8}$")  # also keeps `..` and slashes out of file paths


class OutboxHandler:
    """aiosmtpd handler: each accepted message becomes `<received ns>-<random>.eml`."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        tmp = self.outbox / f".{name}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.outbox / f"{name}.eml")  # the web page never sees half a file
        return "250 Message accepted for delivery"


@dataclass
class Stored:
    id: str
    received_at: datetime
    message: EmailMessage

    def summary(self) -> dict:
        m = self.message
        return {"id": self.id, "received_at": self.received_at.isoformat(), "from": str(m["From"] or ""),
                "to": str(m["To"] or ""), "subject": str(m["Subject"] or "")}

    def part(self, subtype: str) -> str | None:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else None


def _load(path: Path) -> Stored:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    received = datetime.fromtimestamp(int(path.stem.split("-")[0]) / 1e9, tz=timezone.utc)
    return Stored(path.stem, received, message)


_PAGES = jinja2.Environment(autoescape=True, loader=jinja2.DictLoader({
    "list.html": """<!doctype html><meta charset="utf-8"><title>Outbox</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:4px 12px;text-align:left}tr:nth-child(even){background:#f4f4f4}</style>
<h1>Outbox</h1><p>{{ items|length }} message(s), newest first. <a href="/api/messages">JSON</a></p>
<table><tr><th>Received (UTC)</th><th>From</th><th>To</th><th>Subject</th></tr>
{% for m in items %}<tr><td>{{ m.received_at[:19] }}</td><td>{{ m.from }}</td><td>{{ m.to }}</td>
<td><a href="/messages/{{ m.id }}">{{ m.subject or "(no subject)" }}</a></td></tr>{% endfor %}</table>""",
    "message.html": """<!doctype html><meta charset="utf-8"><title>{{ m.subject }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}iframe{width:100%;height:600px;border:1px solid #ccc}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}</style>
<p><a href="/">&larr; Outbox</a> · <a href="/messages/{{ m.id }}.eml">download .eml</a></p>
<h1>{{ m.subject }}</h1><p>From: {{ m.from }}<br>To: {{ m.to }}<br>Received: {{ m.received_at }}</p>
{% if has_html %}<h2>HTML</h2><iframe sandbox src="/messages/{{ m.id }}/html" title="HTML part"></iframe>{% endif %}
{% if text is not none %}<h2>Text</h2><pre>{{ text }}</pre>{% endif %}
<h2>Source</h2><pre>{{ raw }}</pre>""",
}))


def create_app(outbox: Path) -> Starlette:
    def stored(request: Request) -> Stored:
        message_id = request.path_params["id"]
        path = outbox / f"{message_id}.eml"
        if not _ID.match(message_id) or not path.exists():
            raise HTTPException(404, "no such message")
        return _load(path)

    def summaries() -> list[dict]:
        return [_load(p).summary() for p in sorted(outbox.glob("*.eml"), reverse=True)]

    async def index(request: Request) -> Response:
        return HTMLResponse(_PAGES.get_template("list.html").render(items=summaries()))

    async def api_list(request: Request) -> Response:
        # `?to=` narrows to one recipient; each item carries its text part, so a script can
        # pick a link out of the newest message without parsing MIME itself.
        to = request.query_params.get("to", "").lower()
        items = []
        for path in sorted(outbox.glob("*.eml"), reverse=True):
            s = _load(path)
            item = s.summary()
            if to and to not in item["to"].lower():
                continue
            items.append({**item, "text": s.part("plain")})
        return JSONResponse({"messages": items})

    async def show(request: Request) -> Response:
        s = stored(request)
        raw = (outbox / f"{s.id}.eml").read_text(errors="replace")
        page = _PAGES.get_template("message.html").render(
            m=s.summary(), has_html=s.part("html") is not None, text=s.part("plain"), raw=raw
        )
        return HTMLResponse(page)

    async def html_part(request: Request) -> Response:
        # Mail HTML is untrusted: no scripts, no same origin, even if opened outside the iframe.
        return HTMLResponse(stored(request).part("html") or "", headers={"Content-Security-Policy": "sandbox"})

    async def raw(request: Request) -> Response:
        s = stored(request)
        return Response((outbox / f"{s.id}.eml").read_bytes(), media_type="message/rfc822")

    return Starlette(routes=[
        Route("/", index), Route("/api/messages", api_list), Route("/messages/{id}.eml", raw),
        Route("/messages/{id}/html", html_part), Route("/messages/{id}", show),
    ])


class SmtpSink:
    def __init__(self, outbox_dir: Path, *, smtp_port: int = 1025, web_port: int = 8025, host: str = "127.0.0.1"):
        self.outbox = Path(outbox_dir)
        self.host, self.smtp_port, self.web_port = host, smtp_port, web_port
        self._smtp: Controller | None = None
        self._web: uvicorn.Server | None = None
        self._web_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.web_port}/"

    def start(self) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._smtp = Controller(OutboxHandler(self.outbox), hostname=self.host, port=self.smtp_port)
        self._smtp.start()
        config = uvicorn.Config(create_app(self.outbox), host=self.host, port=self.web_port, log_level="warning")
        self._web = uvicorn.Server(config)
        # Its own thread and loop: callable from the synchronous launcher, and uvicorn only
        # takes over signal handling in the main thread, so Ctrl-C stays the launcher's.
        self._web_thread = threading.Thread(target=self._web.run, name="smtp-sink-web", daemon=True)
        self._web_thread.start()
        wait_for_port(self.web_port, self.host)

    def stop(self) -> None:
        if self._web is not None:
            self._web.should_exit = True
            self._web_thread.join(10)
            self._web = None
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None


async def serve_sink(outbox_dir: Path, smtp_port: int, web_port: int) -> None:
    """Run the sink until cancelled."""
    sink = SmtpSink(outbox_dir, smtp_port=smtp_port, web_port=web_port)
    await asyncio.to_thread(sink.start)
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(sink.stop)
