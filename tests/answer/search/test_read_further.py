"""A question about a named setting or call whose entry the search ranks below the pages read: the
results further down are read for it, on a loopback SearXNG-speaking manual (BM25 over whole pages, as
the docs eval's site ranks them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.docqa_site import DocSite

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


@pytest.fixture
def manual(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "html"
    root.mkdir()
    pages = {f"sql-tablespace-{n}.html": _mentions(n) for n in range(4)}
    pages["runtime-config-query.html"] = ENTRY
    pages["other.html"] = _page("Other", f"<p>{FILLER} cost</p>")
    for name, html in pages.items():
        (root / name).write_text(html)
    site = DocSite(root, sorted(pages))
    yield site
    site.close()


def _settings(home: Path, site: DocSite) -> Settings:
    return Settings.model_validate(
        {
            "home": str(home),
            # the provider's order, so that the entry stays below the pages read (the reading order
            # by title and snippet, tested in test_result_order.py, would read it first)
            "search": {
                "providers": ["searxng"],
                "searxng": {"base_url": site.searxng_url},
                "rerank_results": False,
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
