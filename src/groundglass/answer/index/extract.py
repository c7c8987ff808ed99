"""Turn files and fetched bytes into :class:`Document` s: HTML, Markdown, plain text and PDF.

- HTML: trafilatura finds the main text (boilerplate dropped) as Markdown, and the title and
  publication date the way its metadata pass does (:func:`_title_and_date`, without that pass's other
  fields); the Markdown path then splits the text by headings. Data tables become
  Markdown row groups before that, and inline code one line (:mod:`.html_tables` says why). The date
  comes from the page's markup (meta tags, JSON-LD, ``<time>``, a byline, the URL), never from a date
  the prose mentions: htmldate's extensive search hands every date-like phrase to dateparser over all
  its locales, which cost 4.7 s on one long page (Python's whatsnew/2.6.html: 5.4 s against 0.7 s), and
  it dated every page of Python's manual by its "Last updated" footer, which is not a publication date
  (``modified.py`` reads when a page changed). A search provider's date fills in for a page without one.
- Markdown: markdown-it-py tokens -> sections under their nearest heading; YAML front matter gives the
  title and date.
- Plain text: decoded (UTF-8, then Windows-1252), hard-wrapped prose lines joined.
- PDF: pypdf, one section per page ("Page N"); title and creation date from the metadata.

Whatever cannot be ingested raises :class:`SkipFile` with a reason the user can act on (empty file,
binary file, unreadable, PDF without a text layer, encrypted PDF...).
"""

from __future__ import annotations

import contextlib
import io
import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from groundglass.answer.definitions import term_lines, unmarked
from groundglass.answer.index.documents import Document, Section
from groundglass.answer.index.html_headings import (
    escape_stray_headings,
    headings_lost,
    mark_headings,
    page_headings,
    unmark_headings,
)
from groundglass.answer.index.html_tables import prepare_html, put_tables_back, row_groups
from groundglass.answer.index.markdown_fences import fences_on_own_lines
from groundglass.threads import HTML_LOCK

HTML_EXT = {".html", ".htm", ".xhtml", ".shtml"}
MARKDOWN_EXT = {".md", ".markdown", ".mdown", ".mkd", ".mkdn", ".mdx"}
PDF_EXT = {".pdf"}
MAX_FILE_BYTES = 200_000_000


class SkipFile(Exception):
    """This input cannot be ingested; ``str(exc)`` says why."""


# ---------------------------------------------------------------------------------------------- helpers


def _iso_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    m = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})", str(value))
    if m:
        return f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    m = re.match(r"\s*(?:D:)?(\d{4})(\d{2})(\d{2})", str(value))  # PDF dates: D:20210304...
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None


def decode_text(data: bytes, what: str = "file") -> str:
    """Decode bytes that should be text; raise :class:`SkipFile` for binary data."""
    if b"\x00" in data[:8192]:
        raise SkipFile(f"binary {what} (not text, HTML, Markdown or PDF)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SkipFile(f"binary {what} or unknown text encoding (save it as UTF-8)")
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    if sample and controls / len(sample) > 0.02:
        raise SkipFile(f"binary {what} (not text, HTML, Markdown or PDF)")
    return text


_LIST_OR_TABLE = re.compile(r"^\s*([-*+•|>]|\d+[.)])\s")


def unwrap(paragraph: str) -> str:
    """Join hard-wrapped prose lines of one paragraph; keep lists, tables and short lines as lines."""
    lines = [ln.rstrip() for ln in paragraph.splitlines() if ln.strip()]
    if len(lines) <= 1:
        return "\n".join(ln.strip() for ln in lines)
    prose = sum(1 for ln in lines[:-1] if len(ln) >= 40 and not _LIST_OR_TABLE.match(ln))
    if prose < 0.6 * (len(lines) - 1):
        return "\n".join(ln.strip() for ln in lines)
    out = lines[0].strip()
    for ln in lines[1:]:
        ln = ln.strip()
        if out.endswith("-") and ln[:1].islower():
            out = out[:-1] + ln  # de-hyphenate "exam-\nple"
        else:
            out += " " + ln
    return out


def _paragraphs(text: str) -> str:
    return "\n\n".join(p for p in (unwrap(p) for p in re.split(r"\n\s*\n", text)) if p)


def _title_from_name(name: str) -> str:
    stem = Path(name.rstrip("/")).stem or name
    return stem.replace("_", " ").strip() or name


# ------------------------------------------------------------------------------------------- markdown

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    import yaml

    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}, text
    return (data if isinstance(data, dict) else {}), text[m.end() :]


def _inline_text(token: Any) -> str:
    """Plain text of an inline token: formatting dropped, link text and image alt text kept."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content or "")
        elif child.type == "html_inline":
            continue
    return "".join(parts).strip()


def markdown_sections(text: str) -> list[Section]:
    """Sections of a Markdown text, each under its nearest heading."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    sections: list[Section] = []
    heading = ""
    paras: list[str] = []
    row: list[str] = []
    head: list[str] | None = None
    table: list[list[str]] = []
    in_list = 0
    i = 0

    def flush() -> None:
        body = "\n\n".join(p for p in paras if p)
        if body or heading:
            sections.append(Section(heading, body))

    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            flush()
            paras = []
            heading = _inline_text(tokens[i + 1]) if i + 1 < len(tokens) else ""
            i += 3
            continue
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            in_list += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            in_list -= 1
        elif tok.type == "table_open":
            head, table = None, []
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            if tokens[i - 1].type == "th_close" and head is None:
                head = row  # markdown-it puts the header row (th) before the others
            elif any(row):
                table.append(row)
        elif tok.type == "table_close":
            if table or head:
                paras += row_groups(head if head and any(head) else None, table)
        elif tok.type == "inline":
            content = _inline_text(tok)
            if tokens[i - 1].type in ("th_open", "td_open"):
                row.append(content.replace("|", "\\|"))
            elif content:
                paras.append(f"- {content}" if in_list else content)
        elif tok.type in ("fence", "code_block"):
            if tok.content.strip():
                paras.append(tok.content.rstrip())
        elif tok.type == "html_block":
            stripped = re.sub(r"<[^>]+>", " ", tok.content)
            stripped = re.sub(r"[ \t]+", " ", stripped).strip()
            if stripped:
                paras.append(stripped)
        i += 1
    flush()
    return _lists_as_blocks(sections)


def _lists_as_blocks(sections: list[Section]) -> list[Section]:
    """List items are separate paragraphs while parsing; a list reads better as one block of lines."""
    return [Section(s.heading, re.sub(r"\n\n(?=- )", "\n", s.text)) for s in sections]


def markdown_document(text: str, uri: str, fallback_title: str, kind: str = "markdown") -> Document:
    meta, body = _front_matter(text)
    sections = markdown_sections(body)
    title = str(meta.get("title") or "").strip()
    if not title:
        first_h1 = re.search(r"^#\s+(.+?)\s*#*\s*$", body, re.MULTILINE)
        title = first_h1.group(1).strip() if first_h1 else fallback_title
    doc_date = _iso_date(meta.get("date"))
    if not any(s.text.strip() for s in sections):
        raise SkipFile("no text found (empty document)")
    return Document(uri=uri, title=title, sections=sections, date=doc_date, kind=kind)


# ---------------------------------------------------------------------------------------------- HTML


# htmldate's fast mode: markup only, no dateparser over the text (the module's docstring says why)
_DATE_FROM_MARKUP = {"original_date": True, "extensive_search": False}


def _trafilatura_markdown(tree: Any, url: str | None) -> str | None:
    """The page's main text as Markdown, each code block's fence on a line of its own
    (:mod:`.markdown_fences`)."""
    import trafilatura

    markdown = trafilatura.extract(
        tree,
        url=url,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        with_metadata=False,  # the title and date come from _title_and_date
        favor_recall=True,
    )
    return fences_on_own_lines(markdown) if markdown else markdown


def _title_and_date(tree: Any, url: str | None) -> tuple[str, str | None]:
    """The page's title and publication date, found as trafilatura's ``with_metadata`` finds them (meta
    tags, then JSON-LD, then the one ``<h1>`` or the ``<title>``; the date from the markup) without the
    rest of its metadata pass: its author, site name, categories, tags and licence searches cost
    0.2-0.5 s on a long manual page (Python's stdtypes.html: 0.65 s of 1.8 s), for fields nothing reads."""
    from htmldate import find_date
    from trafilatura.metadata import examine_meta, extract_meta_json, extract_title

    meta = examine_meta(tree)
    with contextlib.suppress(Exception):  # trafilatura guards its JSON-LD reader the same way
        meta = extract_meta_json(tree, meta)
    title = meta.title or extract_title(tree) or ""
    found = find_date(tree, url=url, **_DATE_FROM_MARKUP)
    return " ".join(title.split()), _iso_date(found)


def html_document(data: bytes | str, uri: str, fallback_title: str) -> Document:
    import trafilatura

    if isinstance(data, bytes):
        if b"\x00" in data[:8192]:
            raise SkipFile("binary file (not text, HTML, Markdown or PDF)")
        html: str = decode_text(data, "HTML file")
    else:
        html = data
    if not html.strip():
        raise SkipFile("empty file")
    url = uri if uri.startswith(("http://", "https://")) else None
    with HTML_LOCK:  # one page at a time: see groundglass.threads
        tree, tables = prepare_html(html)
        headings = page_headings(tree)
        title, published = _title_and_date(tree, url)
        markdown = unmark_headings(_trafilatura_markdown(tree, url) or "")  # hidden titles are marked
        if markdown and headings_lost(headings, markdown):
            tree, tables = prepare_html(html)
            mark_headings(tree)
            marked = _trafilatura_markdown(tree, url)
            markdown = unmark_headings(escape_stray_headings(marked)) if marked else markdown
        text = "" if markdown else trafilatura.html2txt(html) or ""
    if markdown:
        doc = markdown_document(markdown, uri, fallback_title, kind="html")
        doc.sections = [
            Section(unmarked(s.heading).strip(), term_lines(put_tables_back(s.text, tables)))
            for s in doc.sections
        ]
        doc.title, doc.date = title or doc.title, published
        m = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
        element = re.sub(r"\s+", " ", m.group(1)).strip() if m else ""
        if element and (not title or _site_name(doc.title, element)):
            doc.title = element
        return doc
    if not text.strip():
        raise SkipFile("no text found in the HTML page")
    return Document(uri=uri, title=fallback_title, sections=[Section("", _paragraphs(text))], kind="html")


_TITLE_PARTS = re.compile(r"\s+[|–—·-]\s+")


def _site_name(title: str, element: str) -> bool:
    """Whether ``title`` (trafilatura's, from the page's one ``<h1>``) is only the site's name: the last
    part of the ``<title>`` element, after the page's own. Every page of Node.js's API reference has
    the header "Node.js v18.20.4 documentation"; its ``<title>`` is "Stream | Node.js v18.20.4
    Documentation"."""
    parts = _TITLE_PARTS.split(element)
    return len(parts) > 1 and parts[-1].casefold() == title.strip().casefold()


# ----------------------------------------------------------------------------------------------- PDF


def pdf_document(data: bytes, uri: str, fallback_title: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SkipFile("encrypted PDF (decrypt it first, e.g. qpdf --decrypt)")
        sections: list[Section] = []
        for n, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            text = _paragraphs(text)
            if text.strip():
                sections.append(Section(f"Page {n}", text))
        meta = reader.metadata
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SkipFile(f"unreadable PDF ({exc.__class__.__name__}: {exc})") from exc
    except Exception as exc:  # pypdf raises assorted errors on damaged files
        raise SkipFile(f"unreadable PDF ({exc.__class__.__name__})") from exc
    if not sections:
        raise SkipFile("PDF has no text layer (a scan?); run OCR on it first, e.g. ocrmypdf")
    title = ""
    doc_date = None
    if meta is not None:
        title = (meta.title or "").strip() if isinstance(meta.title, str) else ""
        try:
            doc_date = _iso_date(meta.creation_date)
        except Exception:  # malformed date strings raise inside pypdf
            doc_date = _iso_date(meta.get("/CreationDate"))
    return Document(uri=uri, title=title or fallback_title, sections=sections, date=doc_date, kind="pdf")


# ---------------------------------------------------------------------------------------- plain text


def text_document(data: bytes | str, uri: str, fallback_title: str) -> Document:
    text = decode_text(data) if isinstance(data, bytes) else data
    if not text.strip():
        raise SkipFile("empty file")
    return Document(uri=uri, title=fallback_title, sections=[Section("", _paragraphs(text))], kind="text")


# -------------------------------------------------------------------------------------------- dispatch


def sniff_kind(data: bytes, name: str = "", content_type: str = "") -> str:
    """html | markdown | pdf | text, from the content type, the file name, then the bytes."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml"):
        return "html"
    if ctype == "application/pdf" or data[:5] == b"%PDF-":
        return "pdf"
    if ctype in ("text/markdown", "text/x-markdown"):
        return "markdown"
    suffix = Path(name.split("?")[0]).suffix.lower()
    if suffix in HTML_EXT:
        return "html"
    if suffix in MARKDOWN_EXT:
        return "markdown"
    if suffix in PDF_EXT:
        return "pdf"
    head = data[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    return "text"


def extract_bytes(data: bytes, uri: str, *, name: str = "", content_type: str = "") -> Document:
    """A :class:`Document` from raw bytes (a file's content or a fetched page)."""
    if not data.strip():
        raise SkipFile("empty file")
    fallback = _title_from_name(name or uri)
    kind = sniff_kind(data, name or uri, content_type)
    if kind == "pdf":
        return pdf_document(data, uri, fallback)
    if kind == "html":
        return html_document(data, uri, fallback)
    if kind == "markdown":
        return markdown_document(decode_text(data), uri, fallback)
    return text_document(data, uri, fallback)


def extract_file(path: Path) -> Document:
    """A :class:`Document` from a file on disk; its URI is the absolute ``file://`` URI."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SkipFile(
                f"file too large ({size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB)"
            )
        data = path.read_bytes()
    except PermissionError as exc:
        raise SkipFile("cannot read the file: permission denied (check its permissions)") from exc
    except IsADirectoryError as exc:
        raise SkipFile("is a directory") from exc
    except OSError as exc:
        raise SkipFile(f"cannot read the file: {exc.strerror or exc}") from exc
    doc = extract_bytes(data, path.resolve().as_uri(), name=path.name)
    doc.last_updated = modified_day(path)
    return doc


def modified_day(path: Path) -> str | None:
    """The UTC day of the file's modification time (the day it last changed), ISO YYYY-MM-DD."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date().isoformat()
    except (OSError, OverflowError, ValueError):
        return None


def http_date_day(value: str | None) -> str | None:
    """The UTC day of an HTTP date (a ``Last-Modified`` header), ISO YYYY-MM-DD; None if unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).date().isoformat()
