"""Turn files and fetched bytes into :class:`Document` s: HTML, Markdown, plain text and PDF.

- HTML: trafilatura finds the main text (boilerplate dropped) as Markdown with its metadata (title,
  publication date) as front matter; the Markdown path then splits it by headings. Data tables are
  converted before that (see :func:`table_row_groups`): Markdown rows (``| cell | cell |``) in small
  groups that each start with the header row, so a passage holding some rows also says what the
  columns mean; trafilatura flattens tables or drops them (inside definition lists), and a small model
  cannot tell the rows of flattened text apart. Inline code is put on one line first: trafilatura
  writes inline code that spans lines as a code fence, which swallows the rest of the page.
- Markdown: markdown-it-py tokens -> sections under their nearest heading; YAML front matter gives the
  title and date.
- Plain text: decoded (UTF-8, then Windows-1252), hard-wrapped prose lines joined.
- PDF: pypdf, one section per page ("Page N"); title and creation date from the metadata.

Whatever cannot be ingested raises :class:`SkipFile` with a reason the user can act on (empty file,
binary file, unreadable, PDF without a text layer, encrypted PDF...).
"""

from __future__ import annotations

import io
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from groundglass.answer.index.documents import Document, Section

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
    table: list[str] = []
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
            table = []
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            if any(row):
                table.append(" | ".join(row))
        elif tok.type == "table_close":
            if table:
                paras.append("\n".join(table))
        elif tok.type == "inline":
            content = _inline_text(tok)
            if tokens[i - 1].type in ("th_open", "td_open"):
                row.append(content)
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
    # list items are separate paragraphs above; a list reads better as one block of lines
    merged: list[Section] = []
    for s in sections:
        merged.append(Section(s.heading, re.sub(r"\n\n(?=- )", "\n", s.text)))
    return merged


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

# A row group (header row, separator, rows) stays under this many characters, so that it fits in half
# of a default chunk (180 MiniLM tokens, about 3 characters each in tables): the chunker then keeps a
# group whole, header included, instead of starting a chunk in the middle of it.
TABLE_GROUP_CHARS = 360
_TABLE_MARK = "GGTABLE{:05d}X"  # stands in for a table while trafilatura runs; letters and digits only
_TABLE_MARK_RE = re.compile(r"GGTABLE(\d{5})X")


_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "dt",
        "dd",
        "pre",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "dl",
    }
)


def _cell_text(cell: Any) -> str:
    # block elements inside a cell are separate phrases; inline ones ("<code>f</code>()") are not
    text = "".join(f" {t} " if getattr(el, "tag", None) in _BLOCK_TAGS else t for el, t in _texts(cell))
    text = re.sub(r"\s+", " ", text.replace("\u00b6", "")).strip()  # Sphinx's pilcrow permalinks
    return text.replace("|", "\\|")


def _texts(el: Any) -> list[tuple[Any, str]]:
    """(element, text) pieces in document order: each element's text, then each child's pieces and
    its tail; a tail comes with its element, so the text after a block is spaced from the block."""
    out: list[tuple[Any, str]] = [(el, el.text or "")]
    for child in el:
        out.extend(_texts(child))
        out.append((child, child.tail or ""))
    return out


def _row_cells(row: Any) -> list[str]:
    cells: list[str] = []
    for cell in row.xpath("./th|./td"):
        cells.append(_cell_text(cell))
        span = str(cell.get("colspan") or "1")
        cells.extend([""] * (min(int(span), 50) - 1 if span.isdigit() and int(span) > 1 else 0))
    return cells


def _md_row(cells: list[str], width: int) -> str:
    cells = cells + [""] * (width - len(cells))
    return "| " + " | ".join(cells) + " |"


def table_row_groups(table: Any, group_chars: int = TABLE_GROUP_CHARS) -> list[str] | None:
    """A data table (lxml element) as Markdown row groups, each starting with the header row and its
    separator (a table without a header row gives groups of plain rows); None for a layout table
    (nested tables, fewer than two rows or columns), which is left to trafilatura."""
    if table.xpath(".//table"):
        return None
    rows = table.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")
    cells = [_row_cells(r) for r in rows]
    pairs = [(r, c) for r, c in zip(rows, cells, strict=True) if any(c)]
    width = max((len(c) for _, c in pairs), default=0)
    if len(pairs) < 2 or width < 2:
        return None
    head_rows = [c for r, c in pairs if r.getparent().tag == "thead"]
    if not head_rows and not pairs[0][0].xpath("./td"):
        head_rows = [pairs[0][1]]  # a first row of <th> only
    body = [c for _, c in pairs[len(head_rows) :]] if head_rows else [c for _, c in pairs]
    header = ""
    if head_rows:
        # several header rows (a grouped header) become one, column by column
        merged = [" ".join(h[i] for h in head_rows if i < len(h) and h[i]).strip() for i in range(width)]
        header = _md_row(merged, width) + "\n" + _md_row(["---"] * width, width)
    caption = table.xpath("./caption")
    title = _cell_text(caption[0]) if caption else ""
    groups: list[str] = []
    lines: list[str] = []
    size = len(header)
    for c in body:
        row = _md_row(c, width)
        if lines and size + len(row) + 1 > group_chars:
            groups.append("\n".join(([header] if header else []) + lines))
            lines, size = [], len(header)
        lines.append(row)
        size += len(row) + 1
    if lines:
        groups.append("\n".join(([header] if header else []) + lines))
    if title:
        groups[0] = f"{title}\n{groups[0]}"
    return groups


def _prepare_html(html: str) -> tuple[Any, dict[str, str]]:
    """(the parsed page for trafilatura, {mark: the table's Markdown}): data tables replaced by a mark
    in a paragraph of their own, inline code put on one line. The raw HTML when lxml cannot parse it."""
    import lxml.etree
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", html))
    except (lxml.etree.ParserError, ValueError):
        return html, {}
    for code in tree.xpath("//code[not(ancestor::pre)]"):
        text = code.text_content()
        if "\n" in text:
            for child in list(code):
                code.remove(child)
            code.text = re.sub(r"\s+", " ", text)
    tables: dict[str, str] = {}
    for table in tree.xpath("//table[not(ancestor::table)]"):
        groups = table_row_groups(table)
        if groups is None:
            continue
        mark = _TABLE_MARK.format(len(tables))
        tables[mark] = "\n\n".join(groups)
        para = lxml.html.Element("p")
        para.text = mark
        para.tail = table.tail
        table.getparent().replace(table, para)
    return tree, tables


def _put_tables_back(text: str, tables: dict[str, str]) -> str:
    """Each table mark replaced by its row groups, as paragraphs of their own."""
    if not tables:
        return text
    out = _TABLE_MARK_RE.sub(lambda m: "\n\n" + tables.get(m.group(0), "") + "\n\n", text)
    out = re.sub(r"(?m)^[-*] *\n\n(?=\|)", "", out)  # a list item that only held the table
    return re.sub(r"\n{3,}", "\n\n", out).strip()


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
    tree, tables = _prepare_html(html)
    markdown = trafilatura.extract(
        tree,
        url=url,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        with_metadata=True,
        favor_recall=True,
    )
    if markdown:
        doc = markdown_document(markdown, uri, fallback_title, kind="html")
        doc.sections = [Section(s.heading, _put_tables_back(s.text, tables)) for s in doc.sections]
        meta, _ = _front_matter(markdown)
        if not meta.get("title"):
            m = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
            if m and m.group(1).strip():
                doc.title = re.sub(r"\s+", " ", m.group(1)).strip()
        return doc
    text = trafilatura.html2txt(html) or ""
    if not text.strip():
        raise SkipFile("no text found in the HTML page")
    return Document(uri=uri, title=fallback_title, sections=[Section("", _paragraphs(text))], kind="html")


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
    return extract_bytes(data, path.resolve().as_uri(), name=path.name)
