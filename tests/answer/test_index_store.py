"""The SQLite store: hybrid retrieval, re-adding documents, bad index files, list/remove."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from groundglass.answer.embeddings import get_embedder
from groundglass.answer.index import (
    LocalIndex,
    NothingIngestedError,
    add_sources,
    hybrid,
    list_indexes,
    remove_index,
)
from groundglass.answer.index.builtin import wikipedia_url
from groundglass.answer.index.schema import SCHEMA_VERSION
from groundglass.answer.types import Source
from groundglass.config import Settings
from groundglass.errors import GroundglassError, IndexError_, NotFoundError

QUERIES = {
    "Who directed 2001: A Space Odyssey?": "2001: A Space Odyssey",
    "Which physicist developed the theory of relativity?": "Albert Einstein",
    "How do plants turn sunlight into chemical energy?": "Photosynthesis",
    "What is the highest mountain above sea level?": "Mount Everest",
    "antibiotic discovered by Alexander Fleming": "Penicillin",
    "the largest planet in the Solar System": "Jupiter",
}


@pytest.mark.parametrize("query", list(QUERIES))
def test_hybrid_search_finds_the_right_document(wiki_index: LocalIndex, query: str) -> None:
    results = wiki_index.search(query, k=3)
    assert results[0].title == QUERIES[query]
    top = results[0]
    assert top.url == wikipedia_url(QUERIES[query]) and top.url.startswith("https://en.wikipedia.org/wiki/")
    assert top.score == pytest.approx(1.0, abs=0.02)  # first for both retrievers
    assert (top.snippet and top.snippet in top.text.replace("\n", " ")) or top.snippet.endswith("…")
    assert top.doc_id and top.chunk_id
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)


def test_each_mode_ranks_and_scores_in_its_own_way(wiki_index: LocalIndex) -> None:
    query = "Polish physicist who researched radioactivity"
    bm25 = wiki_index.search(query, k=5, mode="bm25")
    dense = wiki_index.search(query, k=5, mode="dense")
    assert bm25[0].title == dense[0].title == "Marie Curie"
    assert bm25[0].score == 1.0  # relative to the best BM25 hit
    # dense scores are the cosine similarities of the query and the indexed chunk text
    q = get_embedder().encode([query])[0]
    ids, matrix = wiki_index.vectors()
    row = matrix[list(ids).index(int(dense[0].chunk_id))]
    assert dense[0].score == pytest.approx(float(row @ q), abs=1e-5)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    with pytest.raises(GroundglassError, match="unknown retrieval mode"):
        wiki_index.search(query, k=5, mode="fuzzy")
    assert wiki_index.search("   ", k=5) == []


def test_a_query_of_only_stopwords_or_symbols_does_not_break_bm25(wiki_index: LocalIndex) -> None:
    assert isinstance(wiki_index.search("what is the", k=3, mode="bm25"), list)
    # FTS5 syntax in a question is searched as words, never parsed: "near" matches the Moon's near side
    assert [r.title for r in wiki_index.search('"* OR NEAR( -', k=3, mode="bm25")] == ["Moon"]
    assert wiki_index.search('"* ( - ^', k=3, mode="bm25") == []


def _files(folder: Path, pdf_writer) -> None:
    (folder / "sub").mkdir(parents=True)
    (folder / "guide.html").write_text(
        "<html><head><title>Boat guide</title><meta name='date' content='2024-02-29'></head><body><article>"
        "<h1>Boat guide</h1><h2>Knots</h2><p>The bowline knot makes a fixed loop that does not slip. "
        "Sailors call it the king of knots.</p></article></body></html>"
    )
    (folder / "notes.md").write_text("# Tides\n\nSpring tides happen near the new and full moon.\n")
    (folder / "sub" / "plain.txt").write_text("The quartermaster keeps the ship's log and the chronometer.\n")
    pdf_writer(
        folder / "sub" / "charts.pdf",
        ["Mercator charts keep compass bearings as straight lines."],
        title="Chart notes",
        created="D:20190704000000Z",
    )
    (folder / "empty.txt").write_text("")
    (folder / "blob.dat").write_bytes(bytes(range(256)) * 4)
    (folder / ".hidden.md").write_text("# Hidden\n\nshould never be indexed\n")


def test_folder_ingest_reads_every_type_and_reports_skips(index_settings, tmp_path: Path, pdf_writer) -> None:
    folder = tmp_path / "docs"
    _files(folder, pdf_writer)
    index = LocalIndex.open(index_settings, "docs", create=True)
    report = add_sources(index, [str(folder)], progress=False)
    assert (report.added, report.updated, report.unchanged) == (4, 0, 0)
    reasons = {Path(s.uri).name: s.reason for s in report.skipped}
    assert reasons.keys() == {"empty.txt", "blob.dat"}
    assert "empty" in reasons["empty.txt"] and "binary" in reasons["blob.dat"]
    st = index.stats()
    assert st["documents"] == 4 and st["kinds"] == {"html": 1, "markdown": 1, "pdf": 1, "text": 1}
    expect = {
        "bowline loop": ("guide.html", "2024-02-29"),
        "spring tides moon": ("notes.md", None),
        "quartermaster chronometer": ("sub/plain.txt", None),
        "Mercator compass bearings": ("sub/charts.pdf", "2019-07-04"),
    }
    for query, (name, date) in expect.items():
        top = index.search(query, k=1)[0]
        assert top.url == (folder / name).resolve().as_uri()
        assert top.date == date
    assert index.search("Hidden should never be indexed", k=5, mode="bm25") == []
    index.close()


def test_readd_skips_unchanged_and_replaces_changed(index_settings, tmp_path: Path) -> None:
    doc = tmp_path / "keeper.md"
    doc.write_text("# Keeper\n\nThe keeper of Skerrymoor is called Alasdair.\n")
    other = tmp_path / "other.txt"
    other.write_text("Tide tables are printed every winter.\n")
    index = LocalIndex.open(index_settings, "notes", create=True)
    first = add_sources(index, [str(doc), str(other)], progress=False)
    assert (first.added, first.chunks) == (2, 2)
    again = add_sources(index, [str(doc), str(other)], progress=False)
    assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, 2, 0)

    doc.write_text("# Keeper\n\nThe keeper of Skerrymoor is now called Morag.\n\n## Lamp\n\nIt is new.\n")
    index.search("Skerrymoor keeper", k=1, mode="dense")  # warm the vector cache before the change
    changed = add_sources(index, [str(doc), str(other)], progress=False)
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 1)
    assert index.search("Alasdair", k=5, mode="bm25") == []  # the old chunk is gone from BM25 ...
    hits = index.search("Morag", k=5, mode="bm25")
    assert [h.url for h in hits] == [doc.resolve().as_uri()]
    dense = index.search("Who keeps Skerrymoor now?", k=5, mode="dense")  # ... and from the vectors
    assert all("Alasdair" not in h.text for h in dense) and any("Morag" in h.text for h in dense)
    st = index.stats()
    assert st["documents"] == 2
    con = sqlite3.connect(index.path)
    uri = doc.resolve().as_uri()
    (n_chunks,) = con.execute("SELECT n_chunks FROM documents WHERE uri = ?", (uri,)).fetchone()
    (real,) = con.execute(
        "SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.uri = ?", (uri,)
    ).fetchone()
    assert n_chunks == real >= 1 and st["chunks"] == real + 1
    con.close()
    index.close()


def test_nothing_ingested_is_an_error_with_reasons(index_settings, tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "b.txt").write_text("")
    index = LocalIndex.open(index_settings, "bad", create=True)
    with pytest.raises(NothingIngestedError) as info:
        add_sources(
            index,
            [str(tmp_path / "a.bin"), str(tmp_path / "b.txt"), str(tmp_path / "nope.md")],
            progress=False,
        )
    assert "nothing could be ingested" in info.value.message and "binary" in info.value.message
    assert [Path(s.uri).name for s in info.value.report.skipped] == ["a.bin", "b.txt", "nope.md"]
    assert "no such file" in info.value.report.skipped[2].reason
    with pytest.raises(GroundglassError, match="unknown built-in corpus"):
        add_sources(index, ["builtin:encyclopedia"], progress=False)
    index.close()


def test_unknown_index(index_settings) -> None:
    with pytest.raises(NotFoundError) as info:
        LocalIndex.open(index_settings, "x")
    assert info.value.message == "index 'x' does not exist"
    assert info.value.fix == "create it with: groundglass index add PATH --index x"
    with pytest.raises(GroundglassError, match="invalid index name"):
        LocalIndex.open(index_settings, "../etc", create=True)


def test_corrupt_index_file(index_settings) -> None:
    folder = index_settings.indexes_dir / "broken"
    folder.mkdir(parents=True)
    (folder / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexError_, match="corrupt") as info:
        LocalIndex.open(index_settings, "broken")
    assert "groundglass index remove broken --yes" in info.value.fix
    (folder / "index.sqlite").unlink()
    (folder / "stray.txt").write_text("x")
    with pytest.raises(IndexError_, match=r"index\.sqlite is missing"):
        LocalIndex.open(index_settings, "broken")


def test_index_without_our_tables_is_refused(index_settings) -> None:
    folder = index_settings.indexes_dir / "foreign"
    folder.mkdir(parents=True)
    con = sqlite3.connect(folder / "index.sqlite")
    con.execute("CREATE TABLE something(x)")
    con.commit()
    with pytest.raises(IndexError_, match="no meta table"):
        LocalIndex.open(index_settings, "foreign")
    con.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    con.commit()
    con.close()
    with pytest.raises(IndexError_, match="missing tables: chunks, chunks_fts, documents, vectors"):
        LocalIndex.open(index_settings, "foreign")


def test_index_from_a_newer_version(index_settings) -> None:
    LocalIndex.open(index_settings, "future", create=True).close()
    path = index_settings.indexes_dir / "future" / "index.sqlite"
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(IndexError_, match=r"newer groundglass \(schema 99") as info:
        LocalIndex.open(index_settings, "future")
    assert "upgrade groundglass" in info.value.fix


def test_list_and_remove(index_settings) -> None:
    assert list_indexes(index_settings) == []
    for name in ("b", "a"):
        LocalIndex.open(index_settings, name, create=True).close()
    assert list_indexes(index_settings) == ["a", "b"]
    remove_index(index_settings, "a")
    assert list_indexes(index_settings) == ["b"]
    with pytest.raises(NotFoundError):
        remove_index(index_settings, "a")
    empty = LocalIndex.open(index_settings, "b")
    assert empty.search("anything at all", k=3) == []
    assert empty.stats()["documents"] == 0 and empty.integrity() == "ok"
    empty.close()


V1_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents(id INTEGER PRIMARY KEY, uri TEXT NOT NULL UNIQUE, title TEXT NOT NULL, date TEXT,
  kind TEXT NOT NULL, content_hash TEXT NOT NULL, schema_version INTEGER NOT NULL DEFAULT 1,
  n_chunks INTEGER NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE chunks(id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL REFERENCES documents(id),
  ord INTEGER NOT NULL, heading TEXT NOT NULL, body TEXT NOT NULL, indexed_text TEXT NOT NULL,
  embedding BLOB NOT NULL);
CREATE INDEX chunks_by_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5(indexed_text, content='chunks', content_rowid='id',
  tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, indexed_text) VALUES (new.id, new.indexed_text);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, indexed_text) VALUES ('delete', old.id, old.indexed_text);
END;
INSERT INTO meta VALUES ('schema_version', '1'), ('embedding_model', 'all-MiniLM-L6-v2'), ('dim', '384'),
  ('chunk_tokens', '180'), ('chunk_overlap', '30'), ('created', 'x'), ('updated', 'x'), ('generation', '1');
INSERT INTO documents VALUES (1, 'file:///old.txt', 'old', NULL, 'text', 'h', 1, 1, 'x');
"""


def test_an_index_from_schema_1_is_upgraded_in_place(index_settings) -> None:
    folder = index_settings.indexes_dir / "old"
    folder.mkdir(parents=True)
    text = "old\nThe pilot boat waits at the harbour mouth."
    con = sqlite3.connect(folder / "index.sqlite")
    con.executescript(V1_SCHEMA)
    con.execute(
        "INSERT INTO chunks VALUES (1, 1, 0, '', ?, ?, ?)",
        (text.split("\n", 1)[1], text, get_embedder().encode([text])[0].tobytes()),
    )
    con.commit()
    con.close()
    index = LocalIndex.open(index_settings, "old")
    assert index.stats()["schema_version"] == SCHEMA_VERSION and index.integrity() == "ok"
    assert [s.url for s in index.search("Where does the pilot boat wait?", k=1, mode="dense")] == [
        "file:///old.txt"
    ]
    assert [s.url for s in index.search("harbour", k=1, mode="bm25")] == ["file:///old.txt"]
    assert index.remove_document("file:///old.txt")  # the new delete trigger clears the vectors too
    assert index.vectors()[0].size == 0 and index.search("harbour", k=1, mode="bm25") == []
    index.close()


def hits_by_mode(index: LocalIndex, folder: Path, question: str) -> list[tuple[str, list[Source]]]:
    """The files of ``folder`` indexed, and the best three hits for ``question`` in hybrid and bm25."""
    add_sources(index, [str(folder)], progress=False)
    return [(mode, index.search(question, k=3, mode=mode)) for mode in ("hybrid", "bm25")]


def test_a_verbatim_term_finds_its_table_row_that_bm25_cannot_see(index_settings, tmp_path: Path) -> None:
    # FTS5 reads "%j" as the letter j: without the verbatim scan, the pages that talk most about
    # strftime's directives and format codes outrank the one table row that says what %j means
    rows = "\n".join(
        f"| %{c} | {meaning} |"
        for c, meaning in [
            ("a", "Weekday as locale's abbreviated name."),
            ("b", "Month as locale's abbreviated name."),
            ("j", "Day of the year as a zero-padded decimal number."),
            ("m", "Month as a zero-padded decimal number."),
        ]
    )
    (tmp_path / "codes.md").write_text(f"# Format codes\n\n| Directive | Meaning |\n| --- | --- |\n{rows}\n")
    for i in range(6):
        (tmp_path / f"talk{i}.md").write_text(
            f"# strftime notes {i}\n\nWhat a directive means in datetime's strftime format codes depends "
            "on the platform: the format codes and directives of strftime in datetime follow the C standard, "
            "and each directive of the strftime format codes means what the C library says it means.\n"
        )
    index = LocalIndex.open(index_settings, "codes", create=True)
    question = "What does the %j directive mean in datetime's strftime format codes?"
    for mode, hits in hits_by_mode(index, tmp_path, question):
        assert "%j | Day of the year" in hits[0].text, (mode, [h.text[:60] for h in hits])
    assert index.literal("the %j and %m codes", 10) and not index.literal("no verbatim term here", 10)
    index.close()


def test_a_common_verbatim_term_is_looked_for_in_the_chunks_the_questions_words_found(
    index_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # git's manual has "-n" in 871 chunks; the scan's first 400, in the order of the pages, never reached
    # git tag's, the best chunk by the question's words, and other commands' "-n" entries came first
    for i in range(6):
        (tmp_path / f"a{i}.md").write_text(
            f"# git command{i}\n\n- -n:\n- --dry-run:\n- Do not change files.\n"
        )
    (tmp_path / "tag.md").write_text(
        "# git tag\n\n- -n<num>:\n- <num> specifies how many lines from the annotation, if any, are printed "
        "when using -l. If no number is given to -n, only the first line is printed.\n"
    )
    monkeypatch.setattr(hybrid, "LITERAL_SCAN_MAX", 3)
    index = LocalIndex.open(index_settings, "options", create=True)
    add_sources(index, [str(tmp_path)], progress=False)
    question = (
        "When git tag -n is given without a number, how many lines of each tag's annotation are printed?"
    )
    hits = index.search(question, k=3)
    assert hits[0].url.endswith("tag.md"), [h.url for h in hits]
    index.close()


def test_a_call_is_found_by_the_signature_in_its_sections_heading(index_settings, tmp_path: Path) -> None:
    # Node.js's section on setTimeout is headed "setTimeout(callback[, delay[, ...args]])" and never writes
    # "setTimeout()"; only other functions' mentions did, and those took every place ahead of it
    (tmp_path / "timers.md").write_text(
        "# Timers\n\n## setTimeout(callback[, delay[, ...args]])\n\nSchedules execution of a one-time "
        "callback after delay milliseconds. When delay is larger than 2147483647 or less than 1, the delay "
        "will be set to 1.\n"
    )
    for i in range(4):
        (tmp_path / f"misc{i}.md").write_text(
            f"# Timer helpers {i}\n\nCancels a Timeout object created by setTimeout(). The delay of a "
            "timer is set when it is created, and a cancelled timer is never called.\n"
        )
    index = LocalIndex.open(index_settings, "timers", create=True)
    add_sources(index, [str(tmp_path)], progress=False)
    hits = index.search(
        "Above which delay value does setTimeout() set the delay to 1 millisecond instead?", k=3
    )
    assert hits[0].url.endswith("timers.md"), [h.url for h in hits]
    index.close()


def test_a_quoted_row_key_is_found_and_plain_word_rows_elsewhere_do_not_jump_ahead(
    index_settings, tmp_path: Path
) -> None:
    # the array module writes its type codes quoted ("| 'd' |"); other pages have tables with rows
    # named by the question's plain words ("| code |", "| bytes |"), and those used to come first
    def page(title: str, header: list[str], rows: list[list[str]]) -> str:
        cells = "".join(f"<th>{h}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        return (
            f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table></body></html>"
        )

    (tmp_path / "array.html").write_text(
        page(
            "array: efficient arrays of numeric values",
            ["Type code", "C Type", "Python Type", "Minimum size in bytes"],
            [
                ["'b'", "signed char", "int", "1"],
                ["'h'", "signed short", "int", "2"],
                ["'d'", "double", "float", "8"],
            ],
        )
    )
    for i, key in enumerate(["code", "bytes", "code", "size"]):
        (tmp_path / f"other{i}.html").write_text(
            page(
                f"inspect notes {i}",
                ["Attribute", "Meaning"],
                [[key, "what the interpreter keeps of a frame"], ["name", "the frame's name"]],
            )
        )
    for i in range(40):  # enough chunks that the unrelated tables are not among the words' candidates
        (tmp_path / f"prose{i}.md").write_text(
            f"# array notes {i}\n\nAn array of numeric values is compact: the minimum size of each item in "
            f"bytes depends on the type code chosen when the array is made ({i}).\n"
        )
    settings = index_settings.model_copy(
        update={"retrieval": index_settings.retrieval.model_copy(update={"candidates": 8})}
    )
    index = LocalIndex.open(settings, "typecodes", create=True)
    question = "What is the minimum size of array type code 'd', in bytes?"
    for mode, hits in hits_by_mode(index, tmp_path, question):
        assert "| 'd' | double | float | 8 |" in hits[0].text, (mode, [h.text[:60] for h in hits])
        assert not any("what the interpreter keeps" in h.text for h in hits), (mode, [h.url for h in hits])
    index.close()


DOCS = Path("/usr/share/doc/python3.11/html/library")


def first_hit_on_page(settings: Settings, page: str, question: str) -> tuple[str, list[str]]:
    """The best hit for ``question`` in an index of one page of Debian's Python manual, and the
    starts of the best three (for the assertion message)."""
    index = LocalIndex.open(settings, page.split(".")[0], create=True)
    add_sources(index, [str(DOCS / page)], progress=False)
    hits = index.search(question, k=3)
    index.close()
    return hits[0].text, [h.text[:80] for h in hits]


@pytest.mark.skipif(not (DOCS / "sys.html").is_file(), reason="needs Debian's python3.11-doc")
def test_the_table_row_the_question_names_comes_first_in_the_index(index_settings) -> None:
    # five chunks of the real page name sys.float_info; only one holds the row "| dig | DBL_DIG |", and
    # ranked by the object's name alone the chunks of prose about sys.float_info.dig came first
    question = "Which C macro does the dig attribute of sys.float_info correspond to?"
    first, shown = first_hit_on_page(index_settings, "sys.html", question)
    assert re.search(r"^\| dig \| DBL_DIG \|", first, re.MULTILINE), shown


@pytest.mark.skipif(not (DOCS / "codecs.html").is_file(), reason="needs Debian's python3.11-doc")
def test_a_code_named_in_a_table_cell_finds_its_row(index_settings) -> None:
    # "cp819" is one alias among seven in the latin_1 row of a long table; MiniLM puts the table far from
    # the question, and the page's prose about codecs and aliases, and another table of codecs, took
    # the page's two places. As a verbatim term (letters, then digits) it is looked up as written.
    question = "Which codec in Python's standard encodings has the alias cp819?"
    first, shown = first_hit_on_page(index_settings, "codecs.html", question)
    assert re.search(r"^\| latin_1 \| [^|]*\bcp819\b", first, re.MULTILINE), shown


@pytest.mark.skipif(not (DOCS / "concurrent.futures.html").is_file(), reason="needs Debian's python3.11-doc")
def test_the_section_that_answers_is_not_outranked_by_examples_that_spell_the_full_name(
    index_settings,
) -> None:
    # the page's examples spell concurrent.futures.ThreadPoolExecutor(max_workers=5) and so held both of
    # the question's verbatim terms; the section that answers calls the class ThreadPoolExecutor, held
    # one, and ranked by rarity alone came after every example
    question = "Since Python 3.8, what is the default max_workers of concurrent.futures.ThreadPoolExecutor?"
    first, shown = first_hit_on_page(index_settings, "concurrent.futures.html", question)
    assert "Default value of max_workers is changed to min(32, os.cpu_count() + 4)" in first, shown


PG_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")


@pytest.mark.skipif(
    not (PG_DOCS / "runtime-config-resource.html").is_file(), reason="needs Debian's postgresql-doc-15"
)
def test_the_entry_that_defines_a_setting_is_found_whole_before_passages_that_only_name_it(
    index_settings,
) -> None:
    # hash_mem_multiplier's entry names work_mem three times, postgres -S once, and they came first: the
    # model, never shown work_mem's own entry, answered "20.4" (of "Section 20.4.1"). shared_buffers'
    # entry spans three chunks, of which the page's two places kept the two that do not give its default.
    index = LocalIndex.open(index_settings, "pg", create=True)
    pages = [str(PG_DOCS / p) for p in ("runtime-config-resource.html", "app-postgres.html")]
    add_sources(index, pages, progress=False)
    for setting, default in [
        ("work_mem", "The default value is four megabytes (4MB)."),
        ("shared_buffers", "The default is typically 128 megabytes (128MB)"),
    ]:
        hits = index.search(f"What is the default value of {setting}?", k=5)
        shown = [h.text[:60] for h in hits]
        assert f"- {setting} (integer):" in hits[0].text, shown
        assert any(default in h.text and f"- {setting} (integer):" in h.text for h in hits), shown
    index.close()


@pytest.mark.skipif(not (PG_DOCS / "limits.html").is_file(), reason="needs Debian's postgresql-doc-15")
def test_a_row_named_by_a_key_of_several_words_comes_first(index_settings) -> None:
    # "| columns per table | 1,600 |" answers "the maximum number of columns in a table"; the note below
    # the table ("The maximum number of columns for a table is further reduced ...") shares more of the
    # question's words and came first, and the model gave no figure
    index = LocalIndex.open(index_settings, "pglimits", create=True)
    pages = ["limits.html", "infoschema-columns.html", "view-pg-stats.html"]
    add_sources(index, [str(PG_DOCS / p) for p in pages], progress=False)
    hits = index.search("What is the maximum number of columns in a PostgreSQL table?", k=3)
    assert "| columns per table | 1,600 |" in hits[0].text, [h.text[:80] for h in hits]
    index.close()
