"""Tables in HTML pages keep their rows: Markdown rows in groups that each carry the header row, in the
local index's extraction, in the chunks made from it, and in the web page reader.

The real-page tests read Python 3.11's documentation from Debian's ``python3.11-doc`` package (its
format-code, float_info and operator tables) and are skipped where it is not installed.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterator, Sequence
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from loopback_web import LoopbackServer

from groundglass.answer.index.chunking import chunk_document
from groundglass.answer.index.documents import Document
from groundglass.answer.index.extract import html_document
from groundglass.answer.index.html_tables import TABLE_GROUP_CHARS
from groundglass.answer.reader import PageReader
from groundglass.config import FetchSettings

DOCS = Path("/usr/share/doc/python3.11/html")
needs_docs = pytest.mark.skipif(
    not (DOCS / "library" / "datetime.html").is_file(),
    reason="needs Debian's python3.11-doc (apt-get install python3.11-doc)",
)

PAGE = """<!DOCTYPE html><html><head><title>Lamp limits</title></head><body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<main><h1>Lamp limits</h1>
<p>The keeper's handbook lists the limits of every lamp in service at the station, with the figure that
applies to each lamp, so that no lamp is run beyond what its maker allows.</p>
<dl><dt>lamp.limits</dt><dd><p>A table of limits, one row per lamp.</p>
<table><thead><tr><th>Lamp</th><th>Max hours</th><th>Wick (mm)</th></tr></thead><tbody>
{rows}
</tbody></table></dd></dl>
<p>Operators such as <code>a | b</code> are written as in the manual.</p>
<table><tr><td><p>layout cell one</p><table><tr><td>inner</td><td>x</td></tr><tr><td>y</td><td>z</td></tr>
</table></td></tr></table>
<p>Call <code><span>lamp.trim(</span>
<span>length=3)</span></code> to trim the wick, then read the next section.</p>
<h2>After the table</h2><p>The next section follows the table and keeps its own heading.</p>
</main><footer>Copyright</footer></body></html>"""


def lamp_page(n: int) -> str:
    rows = "\n".join(f"<tr><td>Lamp {i}</td><td>{1000 + i}</td><td>{i % 7 + 2}</td></tr>" for i in range(n))
    return PAGE.format(rows=rows)


def paragraphs(doc: Document) -> list[str]:
    return [p for s in doc.sections for p in re.split(r"\n\s*\n", s.text) if p.strip()]


def group_with(doc_or_texts: Document | Sequence[str], row_pattern: str) -> str:
    """The paragraph (or text) holding the row that matches ``row_pattern``."""
    texts = paragraphs(doc_or_texts) if isinstance(doc_or_texts, Document) else doc_or_texts
    hits = [t for t in texts if re.search(row_pattern, t, re.MULTILINE)]
    assert hits, f"no paragraph holds {row_pattern!r}"
    return hits[0]


def assert_row_under_header(text: str, header: str, row_pattern: str) -> None:
    lines = text.splitlines()
    head = lines.index(header)
    assert lines[head + 1].startswith("| ---")
    row = next(i for i, ln in enumerate(lines) if re.search(row_pattern, ln))
    assert row > head + 1, f"the row comes before its header in:\n{text}"


# --- a page built for the purpose -------------------------------------------------------------------


def test_table_inside_a_definition_list_becomes_markdown_rows_under_their_header() -> None:
    doc = html_document(lamp_page(3), "https://example.org/lamps", "lamps")
    text = doc.text
    header = "| Lamp | Max hours | Wick (mm) |"
    group = group_with(doc, r"^\| Lamp 1 \| 1001 \| 3 \|$")
    assert_row_under_header(group, header, r"^\| Lamp 1 \| 1001 \| 3 \|$")
    assert "| Lamp 0 | 1000 | 2 |" in text and "| Lamp 2 | 1002 | 4 |" in text
    assert "GGTABLE" not in text  # no stand-in mark is left behind


def test_long_tables_are_split_in_groups_that_each_start_with_the_header() -> None:
    doc = html_document(lamp_page(40), "https://example.org/lamps", "lamps")
    header = "| Lamp | Max hours | Wick (mm) |"
    groups = [p for p in paragraphs(doc) if "| Lamp " in p and "Max hours" in p]
    assert len(groups) > 1
    for g in groups:  # the table is part of lamp.limits' description: each group names it
        assert g.splitlines()[:2] == ["- lamp.limits:", header]
        assert len(g) <= TABLE_GROUP_CHARS
    rows = [ln for g in groups for ln in g.splitlines()[3:]]
    assert rows == [f"| Lamp {i} | {1000 + i} | {i % 7 + 2} |" for i in range(40)]  # all, in order, once


def test_pipes_in_cells_are_escaped_and_layout_tables_are_left_alone() -> None:
    page = lamp_page(2).replace("<td>Lamp 1</td>", "<td>a | b</td>")
    doc = html_document(page, "https://example.org/lamps", "lamps")
    assert "| a \\| b | 1001 | 3 |" in doc.text
    # a table holding a table is layout, not data: its text stays, and no header groups are made of it
    assert "layout cell one" in doc.text and "inner" in doc.text
    headers = [
        next(ln for ln in p.splitlines() if ln.startswith("|")) for p in paragraphs(doc) if "| --- |" in p
    ]
    assert headers == ["| Lamp | Max hours | Wick (mm) |"]


def test_inline_code_across_lines_does_not_swallow_the_rest_of_the_page() -> None:
    doc = html_document(lamp_page(2), "https://example.org/lamps", "lamps")
    after = next(s for s in doc.sections if s.heading == "After the table")
    assert "keeps its own heading" in after.text
    assert "lamp.trim( length=3)" in doc.text
    assert "```" not in doc.text


# --- real documentation pages ----------------------------------------------------------------------


@functools.cache
def docs_page(rel: str) -> Document:
    path = DOCS / rel
    return html_document(path.read_bytes(), path.as_uri(), path.stem)


@needs_docs
def test_datetime_format_codes_keep_each_row_with_its_header() -> None:
    doc = docs_page("library/datetime.html")
    row = r"^\| %j \| Day of the year as a zero-padded decimal number\. \| 001, 002, …, 366 \| \(9\) \|$"
    assert_row_under_header(group_with(doc, row), "| Directive | Meaning | Example | Notes |", row)
    # the neighbouring rows are rows of their own, not run together with %j's
    assert re.search(r"^\| %U \| Week number of the year \(Sunday", doc.text, re.MULTILINE)


@needs_docs
def test_sys_float_info_table_inside_a_definition_is_kept() -> None:
    doc = docs_page("library/sys.html")
    row = r"^\| dig \| DBL_DIG \| maximum number of decimal digits"
    assert_row_under_header(group_with(doc, row), "| attribute | float.h macro | explanation |", row)


@needs_docs
def test_operator_table_keeps_an_escaped_pipe_in_its_cell() -> None:
    doc = docs_page("library/stdtypes.html")
    row = r"^\| x \\\| y \| bitwise or of x and y \| \(4\) \|$"
    assert_row_under_header(group_with(doc, row), "| Operation | Result | Notes |", row)


def _count(texts: Sequence[str]) -> list[int]:
    return [max(1, len(t) // 3) for t in texts]  # about 3 characters per MiniLM word piece in tables


@needs_docs
def test_a_chunk_that_holds_a_row_holds_its_header_and_keeps_rows_on_lines() -> None:
    doc = docs_page("library/datetime.html")
    chunks = [c.body for c in chunk_document(doc, 180, 30, _count)]
    row = r"^\| %j \| Day of the year"
    holding = [c for c in chunks if re.search(row, c, re.MULTILINE)]
    assert holding
    for c in holding:
        assert_row_under_header(c, "| Directive | Meaning | Example | Notes |", row)


@needs_docs
def test_a_chunk_keeps_each_list_item_on_its_own_line() -> None:
    # joined into one line, "... in Python 3.0-3.7. - Protocol version 4 was added ..." reads as one
    # sentence, and "It is the default protocol starting with Python 3.8." lost what "It" is
    doc = docs_page("library/pickle.html")
    chunks = [c.body for c in chunk_document(doc, 180, 30, _count)]
    holding = [c for c in chunks if "It is the default protocol starting with Python 3.8." in c]
    assert holding
    for c in holding:
        assert re.search(r"^- Protocol version 4 was added in Python 3\.4\. It adds", c, re.MULTILINE), c
        assert ". - Protocol version" not in c


# --- the web page reader ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs_site() -> Iterator[str]:
    server = LoopbackServer(functools.partial(_QuietHandler, directory=str(DOCS)))  # type: ignore[arg-type]
    try:
        yield server.base_url
    finally:
        server.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@needs_docs
def test_reader_keeps_table_rows_of_a_fetched_page(docs_site: str) -> None:
    settings = FetchSettings(allowed_networks=["127.0.0.1/32"], per_host_delay_s=0.0, timeout_s=20.0)

    async def go() -> Document:
        async with PageReader(settings) as reader:
            return (await reader.read(f"{docs_site}/library/datetime.html")).document

    doc = asyncio.run(go())
    row = r"^\| %f \| Microsecond as a decimal number, zero-padded to 6 digits\."
    assert_row_under_header(group_with(doc, row), "| Directive | Meaning | Example | Notes |", row)


@needs_docs
def test_a_value_from_the_next_row_of_a_real_table_is_told_apart_from_the_row_asked_about() -> None:
    from groundglass.answer.rows import wrong_row

    doc = html_document((DOCS / "library" / "sys.html").read_bytes(), "file:///sys.html", "sys")
    text = "\n\n".join(s.text for s in doc.sections)
    start = text.index("sys.float_info")
    chunk = text[start : start + 4000]
    question = "Which C macro does the dig attribute of sys.float_info correspond to?"
    row = wrong_row(
        ["FLT_ROUNDS"], "The dig attribute of sys.float_info corresponds to FLT_ROUNDS.", question, [chunk]
    )
    assert row is not None and row.key == "dig" and "DBL_DIG" in row.line and "float.h macro" in row.header
    assert wrong_row(["DBL_DIG"], "It corresponds to DBL_DIG.", question, [chunk]) is None


@needs_docs
def test_a_value_for_a_table_row_that_no_source_holds_is_told_apart() -> None:
    from groundglass.answer.rows import missing_row, wrong_row

    doc = html_document((DOCS / "library" / "array.html").read_bytes(), "file:///array.html", "array")
    text = "\n\n".join(s.text for s in doc.sections)
    page = text[text.index("| Type code") : text.index("Notes:")]
    # the chunk the index gave for the default model's t05: the table up to 'q', without the 'd' row
    chunk = page[: page.index("| 'Q' |")]
    question = (
        "What is the standard size of struct format 'q' "
        "and the minimum size of array type code 'd', in bytes?"
    )
    sentence = (
        "The standard size of struct format 'q' is 8 bytes, "
        "and the minimum size of array type code 'd' is 2 bytes."
    )
    assert missing_row(["8 bytes", "2 bytes"], sentence, question, [chunk]) == ("2 bytes", "'d'")
    # with the whole table, the 2 is in another row than the one the clause asks about (the numbers
    # are in a cell without their unit, which is in the column's header)
    row = wrong_row(["8 bytes", "2 bytes"], sentence, question, [page])
    assert row is not None and row.key == "'d'" and "| double |" in row.line
    right = sentence.replace("2 bytes", "8 bytes")
    assert wrong_row(["8 bytes"], right, question, [page]) is None
    assert missing_row(["8 bytes"], right, question, [page]) is None
    # a row the question does not ask about is no missing row
    assert missing_row(["2 bytes"], "The 'h' code is 2 bytes.", "How large is a short?", [chunk]) is None


@needs_docs
def test_permalink_marks_are_not_text() -> None:
    doc = html_document((DOCS / "library" / "textwrap.html").read_bytes(), "textwrap.html", "textwrap")
    assert doc.title == "textwrap — Text wrapping and filling"
    assert "¶" not in doc.text
    assert "textwrap.wrap(text, width=70, *, initial_indent=''" in doc.text  # the signature stays
    web = Path(__file__).resolve().parent.parent / "data" / "web" / "fog-signals.html"
    doc = html_document(web.read_bytes(), "fog-signals.html", "fog")
    assert doc.title == "Fog signals" and "¶" not in doc.text
    assert "Types of fog signal" in [s.heading for s in doc.sections]


PG_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")


@pytest.mark.skipif(
    not (PG_DOCS / "runtime-config-replication.html").is_file(), reason="needs Debian's postgresql-doc-15"
)
def test_a_warnings_title_is_the_start_of_its_text_not_a_heading() -> None:
    # DocBook writes <div class="warning"><h3 class="title">Warning</h3><p>...</p></div>: the title,
    # with the warning's text run into it, was the heading of every setting described after it
    path = PG_DOCS / "runtime-config-replication.html"
    doc = html_document(path.read_bytes(), path.as_uri(), path.stem)
    assert not any(s.heading.startswith("Warning") for s in doc.sections), [s.heading for s in doc.sections]
    assert "Warning: Synchronous replication is affected by this setting" in doc.text
    page = (
        "<html><body><h1>Lamps</h1><p>Trim the wick.</p>"
        "<div class='note'><h3>Note</h3><pre>x</pre></div></body></html>"
    )
    assert not any(s.heading == "Note" for s in html_document(page, "https://e.org", "lamps").sections)


def test_text_after_a_line_break_inside_bold_text_is_kept() -> None:
    # as SQLite's pragma.html writes a pragma's syntax; trafilatura dropped all but the first line
    entry = """<a name="pragma_{0}"></a>
<h _id=pragma_{0} style="display:none"> PRAGMA {0}</h><hr>
    <p><b>PRAGMA </b><i>schema.</i><b>{0};
       <br>PRAGMA </b><i>schema.</i><b>{0} = </b><i>pages</i><b>;
       <br>PRAGMA </b><i>schema.</i><b>{0} = -</b><i>kibibytes</i><b>;</b></p>
    <p>Query or change the suggested maximum number of database disk pages
    that SQLite will hold in memory at once per open database file.
    The default suggested {0} is -2000.
"""
    body = "".join(entry.format(name) for name in ("cache_size", "cache_spill", "page_count"))
    page = f"<html><head><title>PRAGMA Statements</title></head><body><h1>Pragmas</h1>{body}</body></html>"
    text = " ".join(html_document(page, "https://e.org/pragma.html", "pragma").text.replace("*", "").split())
    assert "cache_size = pages; PRAGMA schema.cache_size = -kibibytes;" in text.replace("\\", ""), text


@pytest.mark.skipif(not (PG_DOCS / "limits.html").is_file(), reason="needs Debian's postgresql-doc-15")
def test_a_figure_that_is_not_the_one_of_the_row_the_question_names_in_words_is_told_apart() -> None:
    from groundglass.answer.checked import SentenceGate
    from groundglass.answer.rows import unstated_row
    from groundglass.answer.types import Source

    path = PG_DOCS / "limits.html"
    text = html_document(path.read_bytes(), path.as_uri(), path.stem).text
    question = "What is the maximum number of columns in a PostgreSQL table?"
    # what the 1.5B model wrote, from the note under the table: its source holds it, and it does not answer
    note = (
        "The maximum number of columns in a PostgreSQL table is further reduced as the tuple being "
        "stored must fit in a single 8192-byte heap page."
    )
    row = unstated_row(["8192-byte"], note, question, [text])
    assert row is not None and row.key == "columns per table" and "1,600" in row.line
    for value in ("1,600", "1600 columns"):
        right = f"The maximum number of columns in a table is {value}."
        assert unstated_row([value], right, question, [text]) is None
    # a sentence about another part of the question does not name the row
    two = "What is the default value of shared_buffers, and what is the maximum number of columns in a table?"
    assert unstated_row(["128MB"], "The default value of shared_buffers is 128MB.", two, [text]) is None
    # a row named by one word only ("columns") is no row the question names
    assert unstated_row(["8192"], "Columns need 8192 bytes.", "How many columns are there?", [text]) is None

    gate = SentenceGate(
        question, [Source(url=path.as_uri(), title="Appendix K. PostgreSQL Limits", text=text)]
    )
    gate.feed(note + " [1]")
    gate.finish()
    assert gate.failed is not None and gate.failed.reason == "other_figure"
    assert any("columns per table; Upper Limit: 1,600" in hint for _, hint in gate.failed.hints)
    gate = SentenceGate(
        question, [Source(url=path.as_uri(), title="Appendix K. PostgreSQL Limits", text=text)]
    )
    gate.feed("A PostgreSQL table can have at most 1,600 columns. [1]")
    gate.finish()
    assert gate.failed is None
