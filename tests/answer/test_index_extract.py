"""Extraction of each file type, the bad files, and chunking (no embedding model needed)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from groundglass.answer.embeddings import count_tokens, count_tokens_batch
from groundglass.answer.index.chunking import chunk_document
from groundglass.answer.index.documents import Document, Section
from groundglass.answer.index.extract import SkipFile, extract_file, html_document
from groundglass.answer.index.html_headings import page_headings
from groundglass.answer.sentences import split_sentences

SITE = Path(__file__).resolve().parent.parent / "data" / "site"


def test_html_keeps_title_date_headings_and_drops_boilerplate() -> None:
    doc = extract_file(SITE / "guides" / "lamp-maintenance.html")
    assert doc.kind == "html"
    assert doc.title == "Lamp and lens maintenance"
    assert doc.date == "2023-05-17"
    assert doc.uri == (SITE / "guides" / "lamp-maintenance.html").resolve().as_uri()
    headings = [s.heading for s in doc.sections]
    assert "Cleaning the Fresnel lens" in headings and "Trimming the wick" in headings
    fresnel = next(s for s in doc.sections if s.heading == "Cleaning the Fresnel lens")
    assert "soft linen cloth" in fresnel.text
    assert "Advanced topics" not in doc.text  # the navigation bar is boilerplate


def test_html_date_comes_from_the_markup_never_from_a_date_in_the_prose() -> None:
    # a date the text merely mentions is not when the page was published, and reading prose for dates
    # ran dateparser over every locale, for seconds per long page; a byline the markup marks still
    # dates the page
    body = "<p>" + "Keepers trimmed the wicks before sunset and polished the lens every morning. " * 8
    storm = "<p>The storm of 4 November 2011 damaged the lantern room.</p>"
    byline = '<p class="byline">Posted: March 2, 2019</p>'

    def page(extra: str) -> str:
        return (
            "<html><head><title>Keepers</title></head><body><article><h1>Keepers</h1>"
            f"{extra}{body}</p></article></body></html>"
        )

    assert html_document(page(storm), "https://example.org/keepers", "keepers").date is None
    assert html_document(page(byline + storm), "https://example.org/keepers", "keepers").date == "2019-03-02"


def test_html_headings_survive_a_page_without_a_main_frame() -> None:
    # shaped like SQLite's documentation: no <article> or content <div> for trafilatura to find, so it
    # gathers the paragraphs, and each code's value is only in its heading
    doc = extract_file(Path(__file__).resolve().parent.parent / "data" / "pages" / "signal-codes.html")
    by_heading = {s.heading: s.text for s in doc.sections}
    assert "The SIGNAL_LAMP_OUT_WICK code is an extended code" in by_heading["(277) SIGNAL_LAMP_OUT_WICK"]
    assert "dense fog" in by_heading["(1283) SIGNAL_FOG_DENSE"]
    assert "1. Overview" in by_heading and "3. Code Meanings" in by_heading
    assert "GGHEAD" not in doc.text and "Table Of Contents" not in doc.text


def test_an_api_page_keeps_its_own_title_bare_headings_and_history_tables() -> None:
    # every page of Node.js's API reference has the header "Node.js v18.20.4 documentation", which
    # trafilatura took for each page's title: the prompt's sources and the citations were all called so
    doc = extract_file(Path(__file__).resolve().parent.parent / "data" / "pages" / "node-string_decoder.html")
    assert doc.title == "String decoder | Node.js v18.20.4 Documentation"
    assert extract_file(SITE / "guides" / "lamp-maintenance.html").title == "Lamp and lens maintenance"
    # each heading's permalink (<a class="mark" href="#...">#</a>) is not part of it
    headings = [s.heading for s in doc.sections]
    assert "Class: StringDecoder" in headings and "stringDecoder.write(buffer)" in headings
    assert not any(h.endswith("#") for h in headings)
    # each API's History table (collapsed in <details>, inside <div class="api_metadata">) is content:
    # "Since which version ...?" is answered by it
    write = next(s.text for s in doc.sections if s.heading == "stringDecoder.write(buffer)")
    assert "| v8.0.0 | Each invalid character is now replaced by a single replacement character" in write


def test_html_headings_are_not_taken_from_a_code_samples_comments() -> None:
    # Apache httpd's module page (Apache License 2.0): trafilatura drops every directive's <h2> but turns
    # the "# Example B: ..." comment of a flattened <pre> into a Markdown heading, so the page read as
    # one section and no chunk of DirectoryIndex's entry named its directive
    doc = extract_file(Path(__file__).resolve().parent.parent / "data" / "pages" / "apache-mod_dir.html")
    by_heading = {s.heading: s.text for s in doc.sections}
    assert "| Default: | DirectoryIndex index.html |" in by_heading["DirectoryIndex Directive"]
    assert "| Default: | DirectorySlash On |" in by_heading["DirectorySlash Directive"]
    assert not any(h.startswith("Example B") or "\u00b6" in h for h in by_heading)  # nor a permalink sign
    assert "# Example B: This is identical to example A" in doc.text  # the comment stays in its sample


def test_a_sidebars_headings_do_not_count_as_the_pages_own() -> None:
    # Sphinx repeats its sidebar's five headings above and below the page: counted, they outnumbered
    # concurrent.futures' own nine, and the page was extracted again with the sidebar's as sections
    import lxml.html

    sidebar = "".join(f"<h3>{t}</h3><p>x</p>" for t in ("Previous topic", "Next topic", "This Page"))
    page = (
        f"<html><body><div class='sphinxsidebar' role='navigation'>{sidebar}</div><div role='main'>"
        "<h1>concurrent.futures</h1><p>Text.</p><h2>Executor Objects</h2><p>More.</p></div>"
        f"<div class='sphinxsidebar'>{sidebar}</div></body></html>"
    )
    assert page_headings(lxml.html.fromstring(page)) == ["concurrent futures", "executor objects"]


def test_markdown_front_matter_and_headings() -> None:
    doc = extract_file(SITE / "guides" / "fog-signals.md")
    assert (doc.kind, doc.title, doc.date) == ("markdown", "Fog signal schedule", "2022-11-02")
    diaphone = next(s for s in doc.sections if s.heading == "Diaphone pattern")
    assert "two blasts every sixty seconds" in diaphone.text
    assert "---" not in doc.text and "title:" not in doc.text


def test_markdown_formatting_is_dropped_and_lists_kept(tmp_path: Path) -> None:
    p = tmp_path / "notes.md"
    p.write_text(
        "Intro line.\n\n# Setup\n\nRun **pip** with [the guide](http://x.org/).\n\n"
        "- first\n- second\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    doc = extract_file(p)
    assert doc.title == "Setup"  # first level-1 heading
    assert doc.sections[0] == Section("", "Intro line.")
    setup = doc.sections[1]
    assert setup.heading == "Setup"
    assert "Run pip with the guide." in setup.text
    assert "- first\n- second" in setup.text
    assert "| a | b |\n| --- | --- |\n| 1 | 2 |" in setup.text


def test_a_markdown_table_keeps_its_rows_each_group_under_its_header(tmp_path: Path) -> None:
    from groundglass.answer.rows import table_rows

    # as an HTML page's tables are written: Markdown rows, in groups that each repeat the header, so a
    # chunk holding some rows still says what the columns mean (and the row checks can read them)
    rows = "\n".join(f"| opt_{i} | {i * 10} | what option {i} sets, in words |" for i in range(12))
    (tmp_path / "limits.md").write_text(
        f"# Limits\n\n| Setting | Default | Meaning |\n|---|:--:|---|\n{rows}\n"
        "| pipe | 1 | a \\| b |\n\nAfter the table.\n"
    )
    text = extract_file(tmp_path / "limits.md").text
    assert "| Setting | Default | Meaning |\n| --- | --- | --- |\n| opt_0 | 0 | what option 0 sets" in text
    assert text.count("| Setting | Default | Meaning |") > 1  # a long table is cut into groups
    parsed = table_rows([text])
    assert [r.key for r in parsed] == [f"opt_{i}" for i in range(12)] + ["pipe"]
    assert all(r.header == "| Setting | Default | Meaning |" for r in parsed)
    assert parsed[-1].line == "| pipe | 1 | a \\| b |" and "After the table." in text


def test_plain_text_unwraps_hard_wrapped_prose() -> None:
    doc = extract_file(SITE / "docs" / "manual.txt")
    assert doc.kind == "text" and doc.title == "manual"
    assert "Write down the weather at each watch, the barometer reading" in doc.text
    assert "Fuel stores are counted every Sunday." in doc.text


def test_pdf_pages_title_and_date(tmp_path: Path, pdf_writer) -> None:
    path = pdf_writer(
        tmp_path / "report.pdf",
        [
            "Keeper report for the (winter) season of 1901, north\n"
            "station. The lamp burned paraffin all season.",
            "Page two records a storm that broke the lantern glass.",
        ],
        title="Winter report",
        created="D:19010301120000Z",
    )
    doc = extract_file(path)
    assert (doc.kind, doc.title, doc.date) == ("pdf", "Winter report", "1901-03-01")
    assert [s.heading for s in doc.sections] == ["Page 1", "Page 2"]
    assert (
        "Keeper report for the (winter) season of 1901, north station. The lamp burned paraffin all season."
    ) in doc.sections[0].text  # hard-wrapped lines joined
    assert "storm that broke the lantern glass" in doc.sections[1].text


def test_pdf_without_text_is_skipped_with_reason(tmp_path: Path, pdf_writer) -> None:
    path = pdf_writer(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(SkipFile, match="no text layer"):
        extract_file(path)


def test_damaged_pdf_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ngarbage without xref\n")
    with pytest.raises(SkipFile, match="PDF"):
        extract_file(path)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n \t\n", "empty file"),
        ("image.bin", bytes(range(256)) * 8, "binary"),
        ("logo.png", (SITE / "logo.png").read_bytes(), "binary"),
        ("only-front-matter.md", b"---\ntitle: x\n---\n", "no text"),
    ],
)
def test_bad_files_are_skipped_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SkipFile, match=reason):
        extract_file(path)


def test_dangling_symlink_is_unreadable(tmp_path: Path) -> None:
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "missing.txt")
    with pytest.raises(SkipFile, match="cannot read"):
        extract_file(link)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    path.chmod(0)
    with pytest.raises(SkipFile, match="permission denied"):
        extract_file(path)


def test_latin1_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes("Caf\xe9 cr\xe8me at the keeper's house.".encode("cp1252"))
    assert "Café crème" in extract_file(path).text


# ------------------------------------------------------------------------------------------ chunking


def test_sentence_splitter_keeps_abbreviations_and_numbers() -> None:
    text = 'Dr. Smith met J. R. R. Tolkien in the U.S. Army. Version 3.5 shipped! Did it? "Yes." Fine.'
    assert split_sentences(text) == [
        "Dr. Smith met J. R. R. Tolkien in the U.S. Army.",
        "Version 3.5 shipped!",
        "Did it?",
        '"Yes."',
        "Fine.",
    ]


def _long_doc() -> Document:
    sentences = [
        f"Sentence number {i} describes the keeper's duty of watch {i} in some detail." for i in range(60)
    ]
    paras = ["\n".join(sentences[i : i + 6]) for i in range(0, 60, 6)]
    return Document(
        uri="file:///long.txt",
        title="Duties of the keeper",
        sections=[
            Section("Night watches", "\n\n".join(paras)),
            Section("Short note", "Brief."),
            Section("Another note", "Also brief."),
        ],
    )


def test_chunks_fit_budget_end_on_sentences_and_overlap() -> None:
    doc = _long_doc()
    chunks = chunk_document(doc, chunk_tokens=60, overlap=20, count=count_tokens_batch)
    assert len(chunks) > 5
    long_chunks = [c for c in chunks if c.heading == "Night watches"]
    for c in long_chunks:
        assert count_tokens(c.body) <= 60 + 5  # sentence counts are summed: joining adds no word pieces
        assert c.body.endswith(".")  # never cut mid-sentence
        assert c.indexed_text.startswith("Duties of the keeper\nNight watches\n")
    # consecutive chunks inside a paragraph share whole sentences (the overlap)
    shared = 0
    for a, b in itertools.pairwise(long_chunks):
        first_of_b = split_sentences(b.body)[0]
        shared += first_of_b in a.body
    assert shared >= len(long_chunks) // 2
    # every sentence of the document is in some chunk
    for i in range(60):
        assert any(f"watch {i} in" in c.body for c in chunks)
    # the two short sections are merged into one chunk; the second heading stays in its text
    tail = chunks[-1]
    assert tail.heading == "Short note" and "Another note\nAlso brief." in tail.body
    assert [c.ord for c in chunks] == list(range(len(chunks)))


def test_overlong_sentence_is_cut_at_words() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    doc = Document(uri="file:///x", title="T", sections=[Section("", words + ".")])
    chunks = chunk_document(doc, chunk_tokens=100, overlap=10, count=count_tokens_batch)
    assert len(chunks) >= 4
    joined = " ".join(c.body for c in chunks)
    assert "word0 " in joined and "word399." in joined
    assert all(count_tokens(c.body) <= 130 for c in chunks)


def test_title_only_prefix_when_heading_repeats_title() -> None:
    doc = Document(uri="u", title="Fog", sections=[Section("Fog", "Fog is thick today.")])
    (chunk,) = chunk_document(doc, 100, 10, count_tokens_batch)
    assert chunk.indexed_text == "Fog\nFog is thick today."
