"""Which pages a web search reads, on loopback SearXNG-speaking manuals (BM25 over whole pages, as the
docs eval's site ranks them): a question about a named setting or call whose entry the search ranks
below the pages read gets the results further down read for it; and the results are read in the order
of their title and snippet (the provider's first kept first), so a page the keyword engine ranks below
five pages that repeat the question's words is read (as PostgreSQL's manual ranks its
information-schema pages above "Limits")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.docqa_site import DocSite

from groundglass.answer.search.base import SearchResult
from groundglass.answer.search.result_order import reading_order
from groundglass.answer.search.web import WebRetriever
from groundglass.config import Settings

FILLER = " ".join(["The planner weighs each path by its estimated cost in arbitrary units."] * 80)


def _page(title: str, body: str) -> str:
    return f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"


def _mentions(n: int) -> str:
    """A short page that names the setting in passing (as CREATE TABLESPACE's does): BM25 ranks it first."""
    return _page(
        f"ALTER TABLESPACE {n}",
        "<p>The only available parameters are seq_page_cost, random_page_cost and effective_io_concurrency."
        " Setting random_page_cost for a tablespace overrides the planner's estimate for tables in it;"
        " without it, the default value of random_page_cost applies.</p>",
    )


ENTRY = _page(
    "Query Planning",
    f"<p>{FILLER}</p><dl>"
    "<dt>seq_page_cost (floating point)</dt><dd><p>Sets the planner's estimate of the cost of a disk page"
    " fetch that is part of a series of sequential fetches. The default is 1.0.</p></dd>"
    "<dt>random_page_cost (floating point)</dt><dd><p>Sets the planner's estimate of the cost of a"
    " non-sequentially-fetched disk page. The default is 4.0.</p></dd></dl>"
    f"<p>{FILLER}</p>",
)


def _site(root: Path, pages: dict[str, str]) -> Iterator[DocSite]:
    root.mkdir()
    for name, html in pages.items():
        (root / name).write_text(html)
    site = DocSite(root, sorted(pages))
    yield site
    site.close()


@pytest.fixture
def manual(tmp_path: Path) -> Iterator[DocSite]:
    pages = {f"sql-tablespace-{n}.html": _mentions(n) for n in range(4)}
    pages["runtime-config-query.html"] = ENTRY
    pages["other.html"] = _page("Other", f"<p>{FILLER} cost</p>")
    yield from _site(tmp_path / "html", pages)


def _settings(home: Path, site: DocSite, rerank: bool = False) -> Settings:
    """By default in the provider's order, so that an entry stays below the pages read (the reading
    order by title and snippet would read it first)."""
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


def test_the_entry_of_a_named_setting_is_read_from_further_down(tmp_path: Path, manual: DocSite) -> None:
    question = "What is the default value of random_page_cost?"
    ranked = [h["path"] for h in manual.search.search(question)]
    assert ranked.index("runtime-config-query.html") >= 3  # below the three pages "low" reads
    sources, report = WebRetriever(_settings(tmp_path, manual)).retrieve(question, context_size="low")
    read = [p["url"].rsplit("/", 1)[1] for p in report.pages]
    assert read[:3] == ranked[:3] and read[3:] == [
        "runtime-config-query.html"
    ]  # only the page that defines it
    assert "read_more_s" in report.timings
    assert any("random_page_cost (floating point)" in s.text and "4.0" in s.text for s in sources)


def test_the_section_of_a_camel_case_directive_is_read_from_further_down(tmp_path: Path) -> None:
    # as Apache httpd's manual: the core page heads each directive's section with its name and is long,
    # so a keyword engine ranks it below short pages that name the directive in passing
    mentions = {
        f"howto-{n}.html": _page(
            f"How-to {n}", "<p>Set KeepAliveTimeout low on busy servers; KeepAliveTimeout and KeepAlive.</p>"
        )
        for n in range(4)
    }
    core = _page(
        "Apache Core Features",
        f"<p>{FILLER}</p><h2>KeepAliveTimeout Directive</h2><table><tr><th>Default:</th>"
        f"<td>KeepAliveTimeout 5</td></tr></table><p>The number of seconds to wait.</p><p>{FILLER}</p>",
    )
    site = _site(tmp_path / "html", {**mentions, "core.html": core})
    manual = next(site)
    question = "What is the default value of KeepAliveTimeout?"
    assert [h["path"] for h in manual.search.search(question)].index("core.html") >= 3
    sources, report = WebRetriever(_settings(tmp_path, manual)).retrieve(question, context_size="low")
    assert [p["url"].rsplit("/", 1)[1] for p in report.pages][3:] == ["core.html"]
    assert any("KeepAliveTimeout 5" in s.text for s in sources)
    next(site, None)


def test_nothing_more_is_read_when_a_page_read_defines_it_or_no_name_is_asked(
    tmp_path: Path, manual: DocSite
) -> None:
    retriever = WebRetriever(_settings(tmp_path, manual))
    # a question in words names nothing to find an entry of
    for question in ("What does the planner weigh each path by?", "What is the default page cost?"):
        _, report = retriever.retrieve(question, context_size="low")
        assert len(report.pages) == 3 and "read_more_s" not in report.timings
    # a setting no page defines: whatever is read further down, no page is kept for it
    question = "What is the default value of random_page_turbo and of random_page_cost?"
    first = [h["path"] for h in manual.search.search(question)][:3]
    _, report = retriever.retrieve(question, context_size="low")
    assert [p["url"].rsplit("/", 1)[1] for p in report.pages][:3] == first
    # with the entry among the pages read, nothing more is read
    _, report = retriever.retrieve("What is the default value of random_page_cost?", context_size="high")
    assert "read_more_s" not in report.timings


QUESTION = "What is the maximum number of columns in a table?"


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
def limits_manual(tmp_path: Path) -> Iterator[DocSite]:
    pages = {f"infoschema-view-{n}.html": _schema_view(n) for n in range(5)}
    pages["limits.html"] = LIMITS
    yield from _site(tmp_path / "html", pages)


def _read(report: object) -> list[str]:
    return [p["url"].rsplit("/", 1)[1] for p in report.pages]  # type: ignore[attr-defined]


def test_the_page_that_answers_is_read_though_the_search_ranks_it_last(
    tmp_path: Path, limits_manual: DocSite
) -> None:
    ranked = [h["path"] for h in limits_manual.search.search(QUESTION)]
    assert ranked[-1] == "limits.html"  # the keyword engine puts it below all five views
    _, plain = WebRetriever(_settings(tmp_path / "a", limits_manual)).retrieve(QUESTION, context_size="low")
    assert _read(plain) == ranked[:3] and "limits.html" not in _read(plain)
    sources, report = WebRetriever(_settings(tmp_path / "b", limits_manual, rerank=True)).retrieve(
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
