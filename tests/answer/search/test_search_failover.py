"""Failover in the configured order, and the SQLite result cache, against loopback provider servers."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from loopback_web import search_settings

from groundglass.answer.search.base import SearchResult, http_client
from groundglass.answer.search.cache import SearchCache, cache_key
from groundglass.answer.search.failover import Failover, FailoverResult, build_providers
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.search.web import CACHE_FILE, WebRetriever

QUERY = "Eddystone lighthouse"
ORDER = ["searxng", "brave", "tavily", "duckduckgo"]


def failover(settings: Any, query: str = QUERY, filters: SearchFilters | None = None) -> FailoverResult:
    cache = SearchCache(settings.cache_dir / CACHE_FILE, settings.search.cache_ttl_s)

    async def go() -> FailoverResult:
        async with http_client(settings.search.timeout_s) as client:
            chain = Failover(build_providers(settings, client), cache)
            return await chain.search(query, filters or SearchFilters(), 10)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("429", "rate_limited"),
        ("500", "http_error"),
        ("503", "http_error"),
        ("malformed", "malformed"),
        ("html", "malformed"),
        ("hang", "timeout"),
        ("empty", "no_results"),
    ],
)
def test_a_failing_provider_is_skipped_for_the_next(
    tmp_path: Path, search_api: Any, fault: str, kind: str
) -> None:
    settings = search_settings(tmp_path, search_api, ["searxng", "brave"], cache_ttl_s=0, timeout_s=1.5)
    search_api.mode["searxng"] = fault
    started = time.monotonic()
    found = failover(settings)
    assert found.provider == "brave" and found.results
    first, second = found.attempts
    assert (first.provider, first.kind, second.provider, second.outcome) == ("searxng", kind, "brave", "ok")
    assert first.outcome == ("empty" if fault == "empty" else "failed")
    assert first.detail.startswith("searxng: ")
    assert time.monotonic() - started < 3.5  # a hanging provider costs its timeout, not more


def test_failover_walks_the_whole_order(tmp_path: Path, search_api: Any) -> None:
    settings = search_settings(tmp_path, search_api, ORDER, cache_ttl_s=0)
    for name in ("searxng", "brave", "tavily"):
        search_api.mode[name] = "503"
    found = failover(settings)
    assert found.provider == "duckduckgo"
    assert [(a.provider, a.outcome) for a in found.attempts] == [
        ("searxng", "failed"),
        ("brave", "failed"),
        ("tavily", "failed"),
        ("duckduckgo", "ok"),
    ]
    assert dict(search_api.hits) == {"searxng": 1, "brave": 1, "tavily": 1, "ddg": 1}


def test_all_providers_down_is_a_clear_report_with_no_sources(
    tmp_path: Path, search_api: Any, web_site: Any
) -> None:
    settings = search_settings(tmp_path, search_api, ORDER, cache_ttl_s=0)
    search_api.mode.update({"searxng": "500", "brave": "429", "tavily": "malformed", "ddg": "503"})
    sources, report = WebRetriever(settings).retrieve(QUERY)
    assert sources == []
    assert report.provider is None and report.providers_used == []
    assert report.providers_failed == ORDER
    assert report.error is not None and report.error.startswith("no search provider answered: ")
    for words in (
        "searxng: HTTP 500",
        "brave: rate limited (HTTP 429)",
        "tavily: the answer is not valid JSON",
        "duckduckgo: HTTP 503",
    ):
        assert words in report.error
    assert sum(web_site.hits.values()) == 0  # nothing was read, nothing was invented


def test_providers_that_find_nothing_are_an_empty_result_not_a_failed_search(
    tmp_path: Path, search_api: Any, web_site: Any
) -> None:
    # a search engine that answers with no results did answer: an answer declines and /search is
    # empty, where "no search provider answered ... configure a search provider" sent users to fix
    # a config that was right
    settings = search_settings(tmp_path, search_api, ["searxng", "brave"], cache_ttl_s=0)
    search_api.mode.update(searxng="empty", brave="empty")
    found = failover(settings)
    assert found.provider == "searxng" and found.results == []
    assert [(a.provider, a.outcome) for a in found.attempts] == [("searxng", "empty"), ("brave", "empty")]
    sources, report = WebRetriever(settings).retrieve(QUERY)
    assert sources == [] and report.error == "searxng found no results for this query"
    assert report.providers_used == ["searxng"] and report.providers_failed == ["brave"]
    raw, report = WebRetriever(settings).search(QUERY)  # what POST /search and MCP's search use
    assert raw == [] and report.error is None
    assert sum(web_site.hits.values()) == 0
    # one provider down and the other empty is still an empty result; all down is still a failure
    search_api.mode["searxng"] = "500"
    assert failover(settings).provider == "brave"
    search_api.mode["brave"] = "503"
    assert failover(settings).provider is None


def test_unconfigured_providers_are_skipped_and_reported(
    tmp_path: Path, search_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    settings = search_settings(
        tmp_path,
        search_api,
        ["searxng", "brave", "tavily"],
        cache_ttl_s=0,
        searxng={"base_url": ""},
        brave={},
    )
    found = failover(settings)
    assert found.provider == "tavily"
    assert [(a.provider, a.kind) for a in found.attempts] == [
        ("searxng", "not_configured"),
        ("brave", "not_configured"),
        ("tavily", ""),
    ]
    assert "search.searxng.base_url" in found.attempts[0].detail
    assert "searxng" not in search_api.hits and "brave" not in search_api.hits


def test_a_repeated_query_costs_no_provider_call(tmp_path: Path, search_api: Any) -> None:
    settings = search_settings(tmp_path, search_api, ["searxng", "brave"], cache_ttl_s=600)
    first = failover(settings)
    assert first.provider == "searxng" and not first.cached
    assert search_api.hits["searxng"] == 1
    again = failover(settings, query="  eddystone   LIGHTHOUSE ")  # same query, normalised
    assert again.cached and again.provider == "searxng"
    assert [r.url for r in again.results] == [r.url for r in first.results]
    assert again.attempts[0].outcome == "cached"
    assert search_api.hits["searxng"] == 1 and "brave" not in search_api.hits
    # the cache holds even when the provider that answered is down now
    search_api.mode["searxng"] = "500"
    assert failover(settings).cached and search_api.hits["searxng"] == 1
    # other filters are another key: a real call (failing over to brave, which is then cached)
    other = failover(settings, filters=SearchFilters.build(recency="year"))
    assert not other.cached and other.provider == "brave"
    assert search_api.hits["searxng"] == 2 and search_api.hits["brave"] == 1
    with sqlite3.connect(settings.cache_dir / CACHE_FILE) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2


def test_cache_ttl_errors_and_empty_answers(tmp_path: Path) -> None:
    cache = SearchCache(tmp_path / "c.sqlite3", ttl_s=60)
    key = cache_key("searxng", "http://x", "q", {}, 10)
    results = [
        SearchResult(url="https://a.example/", title="A", snippet="s", date="2024-01-01", provider="searxng")
    ]
    cache.put(key, "searxng", "q", results, now=1000.0)
    assert cache.get(key, now=1059.0) == results
    assert cache.get(key, now=1061.0) is None  # expired
    cache.put(key, "searxng", "q", [], now=2000.0)  # an empty answer is not stored
    assert cache.get(key, now=2001.0) is None
    assert cache_key("searxng", "http://x", "Q ", {}, 10) == key
    assert cache_key("searxng", "http://y", "q", {}, 10) != key
    assert cache_key("searxng", "http://x", "q", {"recency": "day"}, 10) != key
    off = SearchCache(tmp_path / "off.sqlite3", ttl_s=0)
    off.put(key, "searxng", "q", results)
    assert off.get(key) is None and not (tmp_path / "off.sqlite3").exists()
    (tmp_path / "broken.sqlite3").write_bytes(b"this is not a database" * 100)
    broken = SearchCache(tmp_path / "broken.sqlite3", ttl_s=60)
    assert broken.get(key) is None  # a broken cache is a miss, not a crash
    broken.put(key, "searxng", "q", results)
