"""The portal pages in a real browser: Playwright for Python driving the system's Chromium
(`deploy/ensure_browser.sh` installs it; Playwright never downloads a browser here), against
the API behind a real uvicorn server on real PostgreSQL. Screenshots of every step are kept
under test-artifacts/browser/ for people to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from deploy.api_app import create_api
from services.common.settings import ApiSettings
from tests.integration.live_server import live_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    path = os.environ.get("PORCHLIGHT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("Chromium is not installed: run deploy/ensure_browser.sh (the README's test command does)")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def portal(base_env) -> AsyncIterator[tuple[str, object]]:
    """(base URL, the app) of the API behind uvicorn; links in emails point at it."""
    app = create_api(ApiSettings(**{k.lower(): v for k, v in base_env.items()}))
    async with live_server(app) as base:
        yield base, app


@pytest.fixture
def shots(request):
    """save(page, step): a full-page screenshot named after the test and the step."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    async def save(page, step: str) -> Path:
        path = folder / f"{step}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
async def http(portal) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=portal[0], timeout=10) as client:
        yield client
