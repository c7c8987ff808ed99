"""``safe_search`` in each provider's wire format, against the loopback search API: SearXNG's
``safesearch=2``, Brave's ``safesearch=strict``, DuckDuckGo's ``kp=1`` (strict); Tavily cannot
filter and is skipped by the failover instead (tests/server/test_safe_search.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from loopback_web import search_settings

from groundglass.answer.search.base import http_client
from groundglass.answer.search.failover import build_providers
from groundglass.answer.search.filters import SearchFilters


def ask(settings: Any, name: str, filters: SearchFilters) -> None:
    async def go() -> None:
        async with http_client(settings.search.timeout_s) as client:
            (provider,) = [p for p in build_providers(settings, client) if p.name == name]
            await provider.search("Who built the Eddystone lighthouse?", filters, 10)

    asyncio.run(go())


def test_each_provider_that_can_filter_is_told_to(tmp_path: Path, search_api: Any) -> None:
    safe = replace(SearchFilters(), safe_search=True)
    for name in ("searxng", "brave", "duckduckgo"):
        ask(search_settings(tmp_path, search_api, [name]), name, safe)
        ask(search_settings(tmp_path, search_api, [name]), name, SearchFilters())
    sx, sx_plain, br, br_plain, dd, dd_plain = search_api.requests
    assert sx["query"]["safesearch"] == "2" and "safesearch" not in sx_plain["query"]
    assert br["query"]["safesearch"] == "strict" and "safesearch" not in br_plain["query"]
    assert "kp=1" in dd["body"] and "kp=-1" in dd_plain["body"]  # search.duckduckgo.safesearch: moderate
    assert SearchFilters().as_key() != safe.as_key()  # cached apart
