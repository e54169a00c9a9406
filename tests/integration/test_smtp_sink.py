"""The dev SMTP sink: real SMTP in, real HTTP out."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib
import httpx

from deploy.embedded import free_port
from deploy.smtp_sink import SmtpSink, serve_sink
from tests.helpers import poll_until, unique


def invitation(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Pride Travelers <portal@porchlight.localhost>"
    message["To"] = to
    message["Subject"] = "Pride Travelers invited you to their client portal"
    message.set_content("Open http://127.0.0.1:8000/portal/pt/claim/abc.def to sign in")
    message.add_alternative('<p>Hi <script>alert(1)</script><a href="http://x/claim/abc.def">Sign in</a></p>', subtype="html")
    return message


async def test_sink_stores_and_shows_messages(tmp_path):
    sink = SmtpSink(tmp_path / "outbox", smtp_port=free_port(), web_port=free_port())
    await asyncio.to_thread(sink.start)
    try:
        to = f"{unique('ana')}@example.com"
        await aiosmtplib.send(invitation(to), hostname="127.0.0.1", port=sink.smtp_port, start_tls=False)
        await aiosmtplib.send(invitation("second@example.com"), hostname="127.0.0.1", port=sink.smtp_port, start_tls=False)

        async with httpx.AsyncClient(base_url=sink.url) as http:
            async def listed():
                items = (await http.get("/api/messages")).json()["messages"]
                return items if len(items) == 2 else None

            items = await poll_until(listed, what="two messages in the outbox")
            assert items[0]["to"] == "second@example.com"  # newest first
            first = items[1]
            assert first["to"] == to and first["subject"] == "Pride Travelers invited you to their client portal"
            assert "Pride Travelers" in first["from"]

            index = await http.get("/")
            assert index.status_code == 200 and to in index.text and f'/messages/{first["id"]}' in index.text

            page = await http.get(f"/messages/{first['id']}")
            assert page.status_code == 200
            assert f'<iframe sandbox src="/messages/{first["id"]}/html"' in page.text
            assert "http://127.0.0.1:8000/portal/pt/claim/abc.def" in page.text  # the text part
            assert "&lt;script&gt;" in page.text and "<script>" not in page.text  # raw source, escaped

            html = await http.get(f"/messages/{first['id']}/html")
            assert html.headers["content-security-policy"] == "sandbox"
            assert 'href="http://x/claim/abc.def"' in html.text

            raw = await http.get(f"/messages/{first['id']}.eml")
            assert raw.headers["content-type"].startswith("message/rfc822") and to in raw.text

            assert (await http.get("/messages/..%2F..%2Fetc%2Fpasswd")).status_code == 404
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    finally:
        await asyncio.to_thread(sink.stop)


async def test_serve_sink_runs_until_cancelled(tmp_path):
    smtp_port, web_port = free_port(), free_port()
    task = asyncio.create_task(serve_sink(tmp_path, smtp_port, web_port))

    async def up():
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{web_port}/api/messages")).status_code == 200
        except httpx.TransportError:
            return None

    await poll_until(up, what="the sink's web page")
    await aiosmtplib.send(invitation("c@example.com"), hostname="127.0.0.1", port=smtp_port, start_tls=False)
    assert len(list(tmp_path.glob("*.eml"))) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await up() is None
