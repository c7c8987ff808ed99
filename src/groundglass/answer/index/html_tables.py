"""HTML data tables as Markdown row groups, kept out of trafilatura's way.

trafilatura flattens tables or drops them (inside definition lists), and a small model cannot tell the
rows of flattened text apart. So before trafilatura runs, each data table is replaced by a mark
(:func:`prepare_html`) and converted here (:func:`table_row_groups`): Markdown rows (``| cell |``) in
small groups that each start with the header row, so a passage holding some rows also says what the
columns mean; afterwards each mark is replaced by its groups (:func:`put_tables_back`). Inline code is
put on one line in the same pass: trafilatura writes inline code that spans lines as a code fence, which
swallows the rest of the page. Permalink anchors (``<a class="headerlink">¶</a>``, which Sphinx and
MkDocs put after every heading and definition, Node.js's ``#``) are dropped too: they are not text, and
they ended every page title in the sources list ("textwrap — Text wrapping and filling¶") and every
signature in the prompt. Definition terms (``<dt>``) are marked, since trafilatura writes them as list
items like their descriptions: :mod:`groundglass.answer.definitions` says why a term must stay known. For
the same reason each row group of a table inside a description starts with its term's name as a term
line. A note's or warning's title that is a heading (DocBook's) becomes the first words of its text, and
a line break inside bold or italic text a space (trafilatura drops the text after it). A manual page set
in one ``<pre>`` becomes headed paragraphs (:mod:`.html_manpages`).
"""

from __future__ import annotations

import re
from typing import Any

from groundglass.answer.definitions import TERM_MARK
from groundglass.answer.index.html_headings import show_hidden_titles
from groundglass.answer.index.html_manpages import manual_pages_as_text

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
    # several header rows (a grouped header) become one, column by column
    merged = [" ".join(h[i] for h in head_rows if i < len(h) and h[i]).strip() for i in range(width)]
    caption = table.xpath("./caption")
    title = _cell_text(caption[0]) if caption else ""
    return row_groups(merged if head_rows else None, body, title, group_chars)


def row_groups(
    head: list[str] | None, body: list[list[str]], title: str = "", group_chars: int = TABLE_GROUP_CHARS
) -> list[str]:
    """Table cells (each escaped for a Markdown cell) as Markdown row groups of at most
    ``group_chars``, each starting with the header row and its separator when there is a header; the
    title, if any, before the first. Also how a Markdown file's own tables are written
    (:func:`groundglass.answer.index.extract.markdown_sections`), so a table reads the same whatever
    format its page was in."""
    width = max([len(head or [])] + [len(c) for c in body])
    header = _md_row(head, width) + "\n" + _md_row(["---"] * width, width) if head else ""
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
    if lines or header:
        groups.append("\n".join(([header] if header else []) + lines))
    if title and groups:
        groups[0] = f"{title}\n{groups[0]}"
    return groups


def prepare_html(html: str) -> tuple[Any, dict[str, str]]:
    """(the parsed page for trafilatura, {mark: the table's Markdown}): data tables replaced by a mark
    in a paragraph of their own, inline code put on one line, each definition term (``<dt>``) marked.
    The raw HTML when lxml cannot parse it."""
    import lxml.etree
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", html))
    except (lxml.etree.ParserError, ValueError):
        return html, {}
    show_hidden_titles(tree)
    manual_pages_as_text(tree)
    for details in tree.xpath("//details"):
        # collapsed, not boilerplate: trafilatura drops <details> whole, and with it Node.js's History
        # tables ("v13.13.0 | Change maximum default size of HTTP headers from 8 KiB to 16 KiB.")
        details.tag = "div"
        for summary in details.xpath("./summary"):
            summary.tag = "p"
    for link in tree.xpath(_PERMALINKS):
        if link.text_content().strip() in _PERMALINK_SIGNS:
            link.drop_tree()  # its tail (the text after it) stays
    for code in tree.xpath("//code[not(ancestor::pre)]"):
        text = code.text_content()
        if "\n" in text:
            for child in list(code):
                code.remove(child)
            code.text = re.sub(r"\s+", " ", text)
    for br in tree.xpath(_BREAK_IN_FORMATTING):
        # trafilatura drops what follows a line break inside bold or italic text: SQLite's pragma page
        # lost "PRAGMA schema.cache_size = pages;" of its syntax lines; a space keeps the words apart
        br.tail = " " + (br.tail or "")
        br.drop_tree()
    for title in tree.xpath(_ADMONITION_TITLE):
        _inline_title(title)
    for term in tree.xpath("//dt[not(ancestor::table)]"):
        term.text = f"{TERM_MARK} {term.text or ''}"  # written back as a term line: definitions.term_lines
    tables: dict[str, str] = {}
    for table in tree.xpath("//table[not(ancestor::table)]"):
        # each group of a table inside a description says which term its rows describe: a chunk of them
        # is found, and read, as about it
        term = _described_term(table)
        lead = f"{TERM_MARK} {term}:\n" if term else ""
        groups = table_row_groups(table, TABLE_GROUP_CHARS - len(lead))
        if groups is None:
            continue
        groups = [lead + g for g in groups]
        mark = _TABLE_MARK.format(len(tables))
        tables[mark] = "\n\n".join(groups)
        para = lxml.html.Element("p")
        para.text = mark
        para.tail = table.tail
        table.getparent().replace(table, para)
        for holder in para.iterancestors():
            if "meta" in holder.get("class", ""):
                # trafilatura drops any element whose class says "meta" as the page's metadata: Node.js's
                # <div class="api_metadata"> holds each API's History table of changed defaults
                del holder.attrib["class"]
    return tree, tables


# Sphinx's "headerlink" anchors, and any in-page link inside a heading or a definition term whose text is
# only a sign: Node.js's API reference ends every heading with <a class="mark" href="#...">#</a>, which
# read "--trace-tls#", "Class: StringDecoder#"
_PERMALINKS = (
    "//a[contains(concat(' ', normalize-space(@class), ' '), ' headerlink ')]"
    " | //*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5 or self::h6 or self::dt]"
    "//a[starts-with(@href, '#')]"
)
_PERMALINK_SIGNS = frozenset({"", "#", "\u00b6", "\u00a7", "\U0001f517"})  # "", #, ¶, §, 🔗
_BREAK_IN_FORMATTING = "//*[self::b or self::strong or self::i or self::em or self::span]//br"
# DocBook's (PostgreSQL's) and others' notes and warnings: a <div class="warning"> whose title is a heading
_ADMONITIONS = ("note", "warning", "tip", "caution", "important", "danger", "attention", "hint", "admonition")
_ADMONITION_TITLE = "//div[{}]/*[{}]".format(
    " or ".join(f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')" for name in _ADMONITIONS),
    " or ".join(f"self::h{n}" for n in range(1, 7)),
)


def _inline_title(title: Any) -> None:
    """A note's or warning's title (a heading) made the first words of its text: "Warning: ...". As a
    heading it became the heading of every passage after it, down to the page's next real heading
    (with the note's first paragraph run into it, as trafilatura writes a heading)."""
    label = " ".join(title.text_content().split()).rstrip(":")
    after = title.getnext()
    if label and after is not None and after.tag == "p":
        after.text = f"{label}: {(after.text or '').lstrip()}"
        title.drop_tree()
    else:
        for child in list(title):
            title.remove(child)
        title.tag, title.text = "p", f"{label}:" if label else ""


def _described_term(table: Any) -> str | None:
    """The name of the definition term whose description (``<dd>``) holds ``table``: ``sys.float_info``
    for its table of attributes (a signature's parameters left out)."""
    dd = next(table.iterancestors("dd"), None)
    dt = dd.getprevious() if dd is not None else None
    while dt is not None and dt.tag != "dt":
        dt = dt.getprevious()
    if dt is None:
        return None
    name = " ".join(dt.text_content().replace(TERM_MARK, "").split()).split("(", 1)[0].strip(" :")
    return name if 0 < len(name) <= 80 else None


def put_tables_back(text: str, tables: dict[str, str]) -> str:
    """Each table mark replaced by its row groups, as paragraphs of their own."""
    if not tables:
        return text
    out = _TABLE_MARK_RE.sub(lambda m: "\n\n" + tables.get(m.group(0), "") + "\n\n", text)
    out = re.sub(rf"(?m)^[-*] *\n\n(?=\||{TERM_MARK})", "", out)  # a list item that only held the table
    return re.sub(r"\n{3,}", "\n\n", out).strip()
