"""Each provider against a loopback server that speaks its wire format: requests, parsing, filters sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from loopback_web import BRAVE_KEY, TAVILY_KEY, search_settings

from groundglass.answer.search import brave, duckduckgo, searxng, tavily
from groundglass.answer.search.base import ProviderError, SearchResult, http_client
from groundglass.answer.search.failover import build_providers
from groundglass.answer.search.filters import SearchFilters

QUERY = "Who built the Eddystone lighthouse?"


def run_provider(
    settings: Any, name: str, filters: SearchFilters | None = None, query: str = QUERY
) -> list[SearchResult]:
    async def go() -> list[SearchResult]:
        async with http_client(settings.search.timeout_s) as client:
            (provider,) = [p for p in build_providers(settings, client) if p.name == name]
            assert provider.configured() is None
            return await provider.search(query, filters or SearchFilters(), 10)

    return asyncio.run(go())


@pytest.mark.parametrize("name", ["searxng", "brave", "tavily", "duckduckgo"])
def test_each_provider_returns_the_sites_pages(
    tmp_path: Path, web_site: Any, search_api: Any, name: str
) -> None:
    settings = search_settings(tmp_path, search_api, [name])
    results = run_provider(settings, name)
    assert [r.url for r in results][:3] == [
        f"{web_site.base_url}/lighthouses.html",
        f"{web_site.base_url}/injection.html",
        f"{web_site.base_url}/lens.html",
    ]
    first = results[0]
    assert first.title == "The Eddystone Lighthouse: four towers on one rock"
    assert first.snippet.startswith("Four lighthouses")
    assert first.provider == name
    if name in ("searxng", "brave"):
        assert first.date == "2024-05-10T09:30:00"
    if name == "brave":
        assert first.language == "en"
    assert run_provider(settings, name, query="nothing matches this") == []


def test_filters_are_passed_on_in_each_wire_format(tmp_path: Path, search_api: Any) -> None:
    filters = SearchFilters.build(domains=["example.org", "-reddit.com"], recency="week", languages=["de"])
    dated = SearchFilters.build(after="2024-01-01", before="3/31/2024")
    for name in ("searxng", "brave", "tavily", "duckduckgo"):
        run_provider(search_settings(tmp_path, search_api, [name]), name, filters)
    run_provider(search_settings(tmp_path, search_api, ["brave"]), "brave", dated)
    run_provider(search_settings(tmp_path, search_api, ["tavily"]), "tavily", dated)
    sx, br, tv, dd, br_dated, tv_dated = search_api.requests
    assert sx["path"] == "/searxng/search"
    assert sx["query"] == {
        "q": QUERY,
        "format": "json",
        "pageno": "1",
        "categories": "general",
        "time_range": "week",
        "language": "de",
    }
    assert br["headers"]["X-Subscription-Token"] == BRAVE_KEY
    assert br["query"]["freshness"] == "pw" and br["query"]["search_lang"] == "de"
    assert br_dated["query"]["freshness"] == "2024-01-01to2024-03-31"
    body = json.loads(tv["body"])
    assert tv["headers"]["Authorization"] == f"Bearer {TAVILY_KEY}"
    assert body["include_domains"] == ["example.org"] and body["exclude_domains"] == ["reddit.com"]
    assert body["time_range"] == "week" and body["query"] == QUERY
    dated_body = json.loads(tv_dated["body"])
    assert (dated_body["start_date"], dated_body["end_date"]) == ("2024-01-01", "2024-03-31")
    assert dd["method"] == "POST" and f"q={QUERY.split()[0]}" in dd["body"] and "df=w" in dd["body"]


def test_keyed_providers_need_their_keys(
    tmp_path: Path, search_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    settings = search_settings(
        tmp_path,
        search_api,
        ["brave", "tavily"],
        brave={"base_url": search_api.url("brave")},
        tavily={"base_url": search_api.url("tavily")},
    )

    async def missing() -> list[str | None]:
        async with http_client(1.0) as client:
            return [p.configured() for p in build_providers(settings, client)]

    assert asyncio.run(missing()) == [
        "set $BRAVE_API_KEY (or search.brave.api_key)",
        "set $TAVILY_API_KEY (or search.tavily.api_key)",
    ]
    monkeypatch.setenv("BRAVE_API_KEY", "wrong-key")
    with pytest.raises(ProviderError) as info:
        run_provider(settings, "brave")
    assert info.value.kind == "http_error" and "401" in info.value.message
    monkeypatch.setenv("BRAVE_API_KEY", BRAVE_KEY)  # the environment variable is enough
    assert run_provider(settings, "brave")


def test_searxng_without_json_format_is_a_clear_failure(tmp_path: Path, search_api: Any) -> None:
    settings = search_settings(tmp_path, search_api, ["searxng"])

    async def go() -> Any:
        async with http_client(1.0) as client:
            provider = searxng.SearxngProvider(settings.search.searxng, client, 1.0)
            provider.params = lambda q, f: {"q": q}  # type: ignore[method-assign]  # an HTML-only request
            return await provider.search("lighthouse", SearchFilters(), 5)

    with pytest.raises(ProviderError) as info:
        asyncio.run(go())
    assert info.value.kind == "http_error" and "JSON format" in info.value.message


def test_parsers_refuse_malformed_answers_and_skip_bad_items() -> None:
    for parse, data in (
        (searxng.parse, {"nope": 1}),
        (brave.parse, {"web": {"results": "x"}}),
        (tavily.parse, ["not", "a", "dict"]),
        (searxng.parse, None),
    ):
        with pytest.raises(ProviderError) as info:
            parse(data)
        assert info.value.kind == "malformed"
    good = {
        "results": [
            {"url": "javascript:alert(1)", "title": "x"},
            "junk",
            {"title": "no url"},
            {"url": "https://ok.example/a", "title": "", "content": None, "score": "high"},
        ]
    }
    (only,) = searxng.parse(good)
    assert (only.url, only.title, only.snippet, only.score) == (
        "https://ok.example/a",
        "https://ok.example/a",
        "",
        None,
    )
    assert brave.parse({"type": "search", "query": {"original": "q"}}) == []  # no web block: no results


def test_duckduckgo_html_parsing_uses_ddgs_and_unwraps_redirect_links() -> None:
    html = (
        '<html><body><div class="results"><div class="links_main links_deep result__body">'
        '<h2 class="result__title"><a class="result__a" href="//duckduckgo.com/l/?uddg='
        'https%3A%2F%2Fexample.org%2Fpage%3Fa%3D1&amp;rut=abc">Example <b>page</b></a></h2>'
        '<a class="result__snippet" '
        'href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fexample.org%2Fpage%3Fa%3D1">'
        "A <b>snippet</b> here</a></div></div></body></html>"
    )
    (r,) = duckduckgo.parse_html(html)
    assert r.url == "https://example.org/page?a=1"
    assert r.title == "Example page" and r.snippet == "A snippet here"
    with pytest.raises(ProviderError):
        duckduckgo.parse_html("   ")


def test_search_settings_from_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from groundglass.config import load_settings
    from groundglass.errors import GroundglassError

    monkeypatch.setenv("GROUNDGLASS_HOME", str(tmp_path))
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-from-env")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[search]\nproviders = ["searxng", "tavily"]\n[search.searxng]\nbase_url = "http://sx:8888"\n'
        '[search.brave]\napi_key = "secret"\n[search.context_sizes.low]\nresults = 2\ntop_k = 3\n'
        "context_tokens = 600\n"
    )
    s = load_settings(cfg).search
    assert s.providers == ["searxng", "tavily"] and s.searxng.base_url == "http://sx:8888"
    assert s.brave.key() == "secret" and s.tavily.key() == "tvly-from-env"
    assert "secret" not in json.dumps(load_settings(cfg).model_dump(mode="json"))  # keys are masked
    assert (s.context_sizes["low"].results, s.context_sizes["high"].results) == (2, 8)  # others kept
    for bad, where in (
        ('providers = ["google"]', "search.providers"),
        ('providers = ["brave", "brave"]', "search.providers"),
        ("[fetch]\nmax_bytes = 10", "fetch.max_bytes"),
    ):
        cfg.write_text(f"[search]\n{bad}\n")
        with pytest.raises(GroundglassError, match=where):
            load_settings(cfg)
