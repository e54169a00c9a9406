"""`/docs` and `/redoc` work offline: every script, style and icon they name comes from the app."""

from __future__ import annotations

import re

import pytest

# Where a page names something to fetch: attributes, and the spec URL in Swagger UI's init script.
REFERENCES = re.compile(r'(?:src|href|spec-url)="([^"]*)"|url: *\'([^\']*)\'')


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_page_names_no_other_host_and_its_assets_are_served(api, page):
    response = await api.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), "an external host is named"
    if page == "/docs":  # else Swagger UI fetches a badge from its online validator
        assert '"validatorUrl": null' in html
    references = [a or b for a, b in REFERENCES.findall(html)]
    scripts = [ref for ref in references if ref.endswith(".js")]
    assert scripts, html
    for ref in references:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        asset = await api.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 1000, ref
    for ref in scripts:
        assert "javascript" in (await api.get(ref)).headers["content-type"]
