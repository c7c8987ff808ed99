"""The web pages people use: ``GET /`` (and ``/share/{id}``, a shared thread) serve the answer page,
``GET /studio`` the DreamBooth studio, ``/static`` their assets, all shipped in the package
(``groundglass/web``), so the pages work offline.

The page is a client of the public API like any other (``/chat/completions`` with SSE, ``/v1/threads``,
``/v1/indexes``, ``/healthz``); nothing here answers questions. A strict Content-Security-Policy keeps
the page to its own scripts and to this server: source titles and snippets come from the web.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

import groundglass

WEB_DIR = Path(groundglass.__file__).resolve().parent / "web"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _page() -> HTMLResponse:
    return HTMLResponse((WEB_DIR / "index.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)


@router.get("/")
async def page() -> HTMLResponse:
    return _page()


@router.get("/studio")
async def studio_page() -> HTMLResponse:
    """DreamBooth's page: photos, fine-tuning, generation (a client of the same API)."""
    return HTMLResponse((WEB_DIR / "studio.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)


@router.get("/share/{share_id}")
async def shared_page(share_id: str) -> HTMLResponse:
    return _page()  # the page reads the id from its address and asks GET /v1/shared/{id}


class Assets(StaticFiles):
    """The page's files; revalidated on each load (ETag), so an upgraded server serves new ones."""

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def assets() -> Assets:
    return Assets(directory=WEB_DIR)
