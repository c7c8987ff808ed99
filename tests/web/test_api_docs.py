"""The API's docs page (/docs, Swagger UI) works offline: its script and styles come from the server
itself, not from a CDN, and Debian's chromium renders the operations from them. There is no /redoc
(ReDoc's page fetches its logo from its CDN)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from web_helpers import Site

KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def test_docs_page_loads_only_files_this_server_serves(site: Site) -> None:
    r = httpx.get(site.url + "/docs", timeout=30)  # no key: the docs are open, as they always were
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "cdn.jsdelivr.net" not in r.text and "tiangolo.com" not in r.text
    links = re.findall(r'(?:src|href)="([^"]*)"', r.text)
    assert links, r.text
    for link in links:
        assert link.startswith("/") and not link.startswith("//"), link  # nothing from another host
        asset = httpx.get(site.url + link, timeout=30)
        assert asset.status_code == 200, link
        kind = KINDS[Path(link).suffix]
        assert kind in asset.headers["content-type"], (link, asset.headers["content-type"])
        assert len(asset.content) > 100, link
    assert httpx.get(site.url + "/redoc", timeout=30).status_code == 404


def test_docs_page_renders_the_operations_offline(browser: Any, site: Site, screens: Path) -> None:
    page = browser.new_page()
    elsewhere: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith(site.url):
            route.continue_()
        else:  # as on a machine with no internet
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto(site.url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 10
    assert "/chat/completions" in page.content()
    page.screenshot(path=str(screens / "api-docs.png"))
    page.close()
    assert elsewhere == []
