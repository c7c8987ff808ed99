"""The results a web search reads first: the provider's first, then the rest by title and snippet, on
a loopback SearXNG-speaking manual whose BM25 ranks five pages that repeat the question's words above
the page that answers it (as PostgreSQL's manual ranks its information-schema pages above "Limits")."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.docqa_site import DocSite

from groundglass.answer.search.base import SearchResult
from groundglass.answer.search.result_order import reading_order
from groundglass.answer.search.web import WebRetriever
from groundglass.config import Settings

QUESTION = "What is the maximum number of columns in a table?"


def _page(title: str, body: str) -> str:
    return f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"


def _schema_view(n: int) -> str:
    """An information-schema view's page (as PostgreSQL's): a table of its columns, whose names and
    descriptions repeat the query's words, so BM25 ranks it above the page that answers."""
    rows = [
        ("table_name", "sql_identifier", "Name of the table containing the column"),
        ("column_name", "sql_identifier", "Name of the column"),
        (
            "maximum_cardinality",
            "cardinal_number",
            "Always null, because arrays always have unlimited "
            "maximum cardinality in this database; the number of columns is not applied here",
        ),
        (
            "character_maximum_length",
            "cardinal_number",
            "Always null, since this information is not applied to the columns of a table",
        ),
    ]
    body = "\n".join(f"<tr><td>{a}</td> <td>{b}</td> <td>{c}</td></tr>" for a, b, c in rows)
    return _page(
        f"37.{n}. view_{n}",
        f"<p>The view view_{n} contains the columns of each table.</p>\n<table>\n{body}\n</table>",
    )


LIMITS = _page(
    "Appendix K. Database Limits",
    "<p>The hard limits of the database system are listed below.</p>\n<table>\n"
    "<tr><th>Item</th> <th>Upper Limit</th> <th>Comment</th></tr>\n"
    "<tr><td>database size</td> <td>unlimited</td> <td></td></tr>\n"
    "<tr><td>relation size</td> <td>32 TB</td> <td>with the default block size</td></tr>\n"
    "<tr><td>columns per table</td> <td>1600</td> <td>further limited by tuple size</td></tr>\n"
    "</table>\n<p>The maximum number of columns for a table is further reduced as the tuple being stored"
    " must fit in a single 8192-byte heap page.</p>",
)


@pytest.fixture
def manual(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "html"
    root.mkdir()
    pages = {f"infoschema-view-{n}.html": _schema_view(n) for n in range(5)}
    pages["limits.html"] = LIMITS
    for name, html in pages.items():
        (root / name).write_text(html)
    site = DocSite(root, sorted(pages))
    yield site
    site.close()


def _settings(home: Path, site: DocSite, rerank: bool) -> Settings:
    return Settings.model_validate(
        {
            "home": str(home),
            "search": {
                "providers": ["searxng"],
                "searxng": {"base_url": site.searxng_url},
                "rerank_results": rerank,
            },
            "fetch": {"allowed_networks": ["127.0.0.1/32"], "per_host_delay_s": 0.0},
        }
    )


def _read(report: object) -> list[str]:
    return [p["url"].rsplit("/", 1)[1] for p in report.pages]  # type: ignore[attr-defined]


def test_the_page_that_answers_is_read_though_the_search_ranks_it_last(
    tmp_path: Path, manual: DocSite
) -> None:
    ranked = [h["path"] for h in manual.search.search(QUESTION)]
    assert ranked[-1] == "limits.html"  # the keyword engine puts it below all five views
    _, plain = WebRetriever(_settings(tmp_path / "a", manual, False)).retrieve(QUESTION, context_size="low")
    assert _read(plain) == ranked[:3] and "limits.html" not in _read(plain)
    sources, report = WebRetriever(_settings(tmp_path / "b", manual, True)).retrieve(
        QUESTION, context_size="low"
    )
    read = _read(report)
    assert len(read) == 3 and read[0] == ranked[0]  # the provider's first keeps its place
    assert "limits.html" in read
    assert any("1600" in s.text for s in sources)


def test_order_keeps_the_first_and_sorts_the_rest_by_title_and_snippet() -> None:
    results = [
        SearchResult("https://a.example/1", "Release notes", "Changes in this version."),
        SearchResult("https://a.example/2", "Cooking pasta", "Boil water, add salt, cook for ten minutes."),
        SearchResult("https://a.example/3", "Database limits", "columns per table: 1600"),
        SearchResult("https://a.example/4", "Gardening", "Roses need sun."),
    ]
    order = [r.url[-1] for r in reading_order(QUESTION, results)]
    assert order[0] == "1" and order[1] == "3"
    assert sorted(order) == ["1", "2", "3", "4"]
    assert reading_order(QUESTION, results[:2]) == results[:2]  # nothing to reorder
