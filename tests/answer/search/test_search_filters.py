"""Filters: parsing and checks as plain functions, then enforced end to end on a provider that
ignores them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from loopback_web import search_settings

from groundglass.answer.search.filters import SearchFilters, parse_when
from groundglass.answer.search.web import WebRetriever
from groundglass.errors import GroundglassError

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def test_build_follows_perplexitys_conventions() -> None:
    f = SearchFilters.build(
        domains=["https://www.NASA.gov/missions", "-reddit.com", "esa.int", "-reddit.com"],
        recency="month",
        after="3/1/2024",
        before="2024-06-30",
        languages=["EN", "de-DE"],
    )
    assert f.allow_domains == ("nasa.gov", "esa.int") and f.deny_domains == ("reddit.com",)
    assert (f.after, f.before) == (date(2024, 3, 1), date(2024, 6, 30))
    assert f.languages == ("en", "de")
    assert SearchFilters.build() == SearchFilters()


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"recency": "fortnight"}, "search_recency_filter"),
        ({"after": "yesterday"}, "search_after_date_filter"),
        ({"before": "2024-13-01"}, "search_before_date_filter"),
        ({"after": "2024-05-01", "before": "2024-04-01"}, "search_after_date_filter"),
        ({"domains": ["not a domain!"]}, "search_domain_filter"),
        ({"domains": [f"d{i}.com" for i in range(21)]}, "search_domain_filter"),
        ({"languages": ["english language"]}, "search_language_filter"),
    ],
)
def test_bad_filters_are_clear_errors(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(GroundglassError) as info:
        SearchFilters.build(**kwargs)
    assert info.value.param == param
    assert info.value.fix


def test_domain_checks_cover_subdomains_and_nothing_else() -> None:
    f = SearchFilters.build(domains=["nasa.gov", "-blogs.nasa.gov"])
    assert f.check_domain("https://www.nasa.gov/a") is None
    assert f.check_domain("https://science.nasa.gov/b") is None
    assert "excluded" in (f.check_domain("https://blogs.nasa.gov/c") or "")
    assert "not in the domain filter" in (f.check_domain("https://notnasa.gov/") or "")
    assert "not in the domain filter" in (f.check_domain("https://nasa.gov.evil.example/") or "")
    deny_only = SearchFilters.build(domains=["-reddit.com"])
    assert deny_only.check_domain("https://example.org/") is None
    assert deny_only.check_domain("https://old.reddit.com/r/x") is not None


def test_dates_recency_and_undated() -> None:
    week = SearchFilters.build(recency="week")
    assert week.check_date("2024-06-10T08:00:00Z", now=NOW) is None
    assert "before the date filter's start (2024-06-08)" in (week.check_date("2024-06-01", now=NOW) or "")
    assert week.check_date("3 days ago", now=NOW) is None
    assert week.check_date("Mon, 10 Jun 2024 10:00:00 GMT", now=NOW) is None
    assert week.check_date(None, now=NOW) == "no publication date, and a date filter is set"
    assert week.check_date(None, undated="keep", now=NOW) is None
    hour = SearchFilters.build(recency="hour")
    assert hour.check_date("2024-06-15", now=NOW) is None  # a day-only date counts as the whole day
    assert hour.check_date("2024-06-15T09:00:00+00:00", now=NOW) is not None
    span = SearchFilters.build(after="2024-01-01", before="2024-03-31")
    assert span.check_date("2024-03-31T23:00:00", now=NOW) is None
    assert "after the date filter's end" in (span.check_date("April 2, 2024", now=NOW) or "")
    assert SearchFilters().check_date(None) is None
    assert parse_when("not a date") is None


def test_language_checks() -> None:
    f = SearchFilters.build(languages=["de"])
    assert f.check_language("de-AT") is None
    assert f.check_language("en") == "language en is not in the language filter (de)"
    assert f.check_language(None) == "language unknown, and a language filter is set"
    assert SearchFilters().check_language(None) is None


def retrieve(tmp_path: Path, api: Any, filters: SearchFilters, size: str = "high") -> tuple[list[Any], Any]:
    # DuckDuckGo's wire format carries no dates or languages, and our loopback DuckDuckGo ignores every
    # filter: whatever is filtered here, we filtered.
    settings = search_settings(tmp_path, api, ["duckduckgo"], cache_ttl_s=0)
    return WebRetriever(settings).retrieve("lighthouses", filters, size)


def page_urls(report: Any) -> set[str]:
    return {p["final_url"].rsplit("/", 1)[1] for p in report.pages}


def test_filters_are_enforced_on_read_pages(tmp_path: Path, web_site: Any, search_api: Any) -> None:
    sources, report = retrieve(tmp_path, search_api, SearchFilters.build(domains=["-127.0.0.1"]))
    assert sources == [] and not report.pages
    assert all(f.kind == "filtered" and "excluded" in f.reason for f in report.failures)
    assert sum(web_site.hits.values()) == 0  # filtered before any page was fetched

    sources, report = retrieve(tmp_path, search_api, SearchFilters.build(after="2024-01-01"))
    assert page_urls(report) == {"lighthouses.html", "injection.html", "leuchtturm.html", "report.pdf"}
    reasons = {f.url.rsplit("/", 1)[1]: f.reason for f in report.failures}
    assert "published 2023-11-20" in reasons["lens.html"]
    assert "no publication date" in reasons["keepers.txt"]
    assert {s.date >= "2024-01-01" for s in sources} == {True}

    sources, report = retrieve(tmp_path, search_api, SearchFilters.build(languages=["de"]), size="low")
    assert page_urls(report) == {"leuchtturm.html"}
    assert {s.url.rsplit("/", 1)[1] for s in sources} == {"leuchtturm.html"}
    assert "language en is not in the language filter (de)" in {f.reason for f in report.failures}
