"""The local index keeps the day each document last changed (``documents.last_updated``): a file's
modification time, a crawled page's ``Last-Modified`` header. Its sources carry it as
``last_updated``, the last_updated filters keep them by it, a file touched but not changed is
re-dated without being re-chunked, and an index from schema 2 gains the column in place.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from groundglass.answer.index import LocalIndex, add_sources
from groundglass.answer.index.crawl import crawl
from groundglass.answer.index.documents import Document
from groundglass.answer.index.schema import SCHEMA_VERSION
from groundglass.answer.retrieve import search_index, source_filter
from groundglass.answer.search.filters import SearchFilters
from groundglass.config import load_settings

SITE_DIR = Path(__file__).resolve().parent.parent / "data" / "site"  # what the site_server serves


def at(path: Path, day: str) -> Path:
    """``path`` with its modification time at noon UTC on ``day`` (YYYY-MM-DD)."""
    when = dt.datetime.fromisoformat(day).replace(hour=12, tzinfo=dt.UTC).timestamp()
    os.utime(path, (when, when))
    return path


def test_files_keep_their_modification_day_and_filters_use_it(index_settings, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    old = folder / "old.md"
    old.write_text("# Old keeper\n\nThe Skerrymoor keeper in 1990 was Alasdair.\n")
    at(old, "2023-03-10")
    new = folder / "new.md"
    new.write_text("# New keeper\n\nThe Skerrymoor keeper today is Morag.\n")
    at(new, "2024-06-04")
    index = LocalIndex.open(index_settings, "dated", create=True)
    add_sources(index, [str(folder)], progress=False)
    hits = index.search("Who is the Skerrymoor keeper?", k=5)
    assert {Path(h.url.removeprefix("file://")).name: h.last_updated for h in hits} == {
        "old.md": "2023-03-10",
        "new.md": "2024-06-04",
    }

    def kept(**window: str) -> list[str]:
        keep = source_filter(SearchFilters.build(**window))
        found = search_index(index, ["Who is the Skerrymoor keeper?"], 5, keep)
        return sorted(Path(s.url).name for s in found.sources)

    assert kept(updated_after="1/1/2024") == ["new.md"]
    assert kept(updated_before="2023-03-10") == ["old.md"]  # the bounds are whole days
    assert kept(updated_after="2024-06-05") == []

    # the index as the search provider ``local`` (POST /search on an offline server) judges the same day
    from groundglass.answer.search.web import WebRetriever

    local = load_settings(search__providers=["local"], search__local={"index": "dated"})
    sources, report = WebRetriever(local).search(
        "Who is the Skerrymoor keeper?", SearchFilters.build(updated_after="1/1/2024")
    )
    assert [(Path(s.url).name, s.last_updated) for s in sources] == [("new.md", "2024-06-04")]
    assert [f.url for f in report.failures] == [old.resolve().as_uri()]

    # touched, not changed: re-dated, not re-chunked
    at(old, "2024-07-01")
    again = add_sources(index, [str(folder)], progress=False)
    assert (again.unchanged, again.chunks) == (2, 0)
    assert kept(updated_after="7/1/2024") == ["old.md"]
    index.close()


def test_a_document_that_does_not_say_is_kept_out_by_the_filters(index_settings) -> None:
    from groundglass.answer.index.ingest import add_documents

    index = LocalIndex.open(index_settings, "undated", create=True)
    add_documents(index, [Document(uri="https://kb.example.org/a", title="A", sections=[])])
    add_documents(
        index,
        [Document(uri="https://kb.example.org/b", title="Fog", sections=[_section("The foghorn sounds.")])],
    )
    hits = index.search("foghorn", k=3)
    assert hits and all(h.last_updated is None for h in hits)
    keep = source_filter(SearchFilters.build(updated_after="1/1/2000"))
    assert keep is not None and not any(keep(h) for h in hits)
    index.close()


def _section(text: str):  # -> Section
    from groundglass.answer.index.documents import Section

    return Section("", text)


def test_crawled_pages_keep_their_last_modified_day(site_server, gg_home) -> None:
    settings = load_settings(fetch__allow_private=True)
    docs = {
        d.uri.removeprefix(site_server.base): d
        for d in crawl(site_server.base + "/", settings.crawl, settings.fetch)
        if isinstance(d, Document)
    }
    lamp = docs["/guides/lamp-maintenance.html"]
    mtime = (SITE_DIR / "guides" / "lamp-maintenance.html").stat().st_mtime
    assert lamp.last_updated == dt.datetime.fromtimestamp(mtime, tz=dt.UTC).date().isoformat()
    assert lamp.date == "2023-05-17"  # the publication date is another fact


def test_an_index_from_schema_2_gains_the_column(index_settings, tmp_path: Path) -> None:
    index = LocalIndex.open(index_settings, "older", create=True)
    doc = tmp_path / "keeper.md"
    doc.write_text("# Keeper\n\nThe keeper of Skerrymoor is called Alasdair.\n")
    add_sources(index, [str(doc)], progress=False)
    index.close()
    con = sqlite3.connect(index.path)  # as schema 2 left it: no last_updated column
    con.executescript(
        "ALTER TABLE documents DROP COLUMN last_updated;"
        "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
    )
    con.close()

    index = LocalIndex.open(index_settings, "older")
    assert index.stats()["schema_version"] == SCHEMA_VERSION == 3 and index.integrity() == "ok"
    assert [h.last_updated for h in index.search("Skerrymoor keeper", k=1)] == [None]
    again = add_sources(index, [str(doc)], progress=False)  # the same file: dated, not re-chunked
    assert (again.unchanged, again.chunks) == (1, 0)
    day = dt.datetime.fromtimestamp(doc.stat().st_mtime, tz=dt.UTC).date().isoformat()
    assert [h.last_updated for h in index.search("Skerrymoor keeper", k=1)] == [day]
    index.close()
