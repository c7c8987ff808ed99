"""Manual pages rendered as HTML (man2html, groff's ``-Thtml``: one ``<pre>`` of the whole page, names in
``<b>``, arguments in ``<i>``) made into headed paragraphs before trafilatura reads them.

trafilatura reads such a ``<pre>`` as prose with emphasis and writes its Markdown: the line breaks go,
the whole page becomes one paragraph, and a name set in pieces of bold and italic comes back as
Markdown residue: Postfix's ``postsuper [-c <i>config</i><b>_</b><i>dir</i>] [-d <i>queue</i><b>_</b>...``
read ``[-c config**_dir] [-d** queue**_id]``, which the model copied into its answer. Here the
emphasis is dropped (a manual's bold is not a code span), each run of lines between blank lines
becomes a paragraph with its lines joined (hyphenated words put back together), and a line of capitals
at the left margin ("DESCRIPTION", "SEE ALSO") becomes a heading, so the page has sections as its
manual has. A tagged paragraph (an option over its description, indented deeper) becomes a definition
list's term and description, as a manual in HTML writes its options: joined into one line, "-i
queue_id Schedule immediate delivery of deferred mail ..." named no option that condensing, the
chunker or the retry's hints could keep with its description, and asked which postqueue option does
that, the default model declined. A ``<pre>`` without such emphasis is code, and is left to trafilatura.
"""

from __future__ import annotations

import re
from typing import Any

_EMPHASIS = ("b", "i", "u", "em", "strong", "font")
_HEADING = re.compile(r"[A-Z][A-Z0-9 ,/()-]{1,58}[A-Z)]")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_TAG_CHARS = 60  # a tag on a line of its own longer than this is prose, not an option's name
_TAG_WORDS = 6
_LIST_MARK = re.compile(r"[o•+-]|\(?\d{1,2}[.)]|\(?[a-z][.)]")  # troff's "o" bullet, "3)", "(a)"


def manual_pages_as_text(tree: Any) -> None:
    """Each ``<pre>`` of ``tree`` set in bold or italic replaced by headings and paragraphs (in place)."""
    for pre in tree.xpath("//pre[.//b or .//i]"):
        _as_paragraphs(pre)


def _as_paragraphs(pre: Any) -> None:
    import lxml.html

    for element in list(pre.iterdescendants(*_EMPHASIS)):
        element.drop_tag()  # its text and tail stay
    sub = lxml.html.etree.SubElement
    div = lxml.html.Element("div")
    columns: tuple[int, int] | None = None  # (tag, text) columns of the last tagged paragraph
    for block in _BLANK_LINE.split(pre.text_content()):
        lines = [line for line in block.splitlines() if line.strip()]
        if lines and not lines[0][:1].isspace() and _HEADING.fullmatch(lines[0].strip()):
            sub(div, "h2").text = lines.pop(0).strip()
        item = tagged(lines, columns)
        if item is not None:
            columns = item[2]
            entry = sub(div, "dl")
            sub(entry, "dt").text, sub(entry, "dd").text = item[0], joined(item[1])
            continue
        text = joined(lines)
        if text:
            sub(div, "p").text = text
    div.tail = pre.tail
    pre.getparent().replace(pre, div)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def tagged(
    lines: list[str], columns: tuple[int, int] | None = None
) -> tuple[str, list[str], tuple[int, int]] | None:
    """(the tag, its description's lines, their two columns) when ``lines`` are a tagged paragraph
    (troff's ``.TP``: an option, a setting or a status character at one indent, its description at a
    deeper one), else None. A list's bullet or number is no tag.

    Two layouts: the tag on a line of its own (``-i queue_id`` over its description), or a short tag
    with the description starting on its line, in the column the following lines keep (``-f     Flush
    the queue: ...``). A first line that reaches past that column with no gap is the tag only when it is
    short and is not a sentence. A one-line paragraph has no second line to give the description's
    column: it is tagged when its gap ends in the ``columns`` of the tagged paragraph before it (troff
    sets a list's descriptions in one column; a justified line's double spaces fall anywhere)."""
    if not lines:
        return None
    tag_at = _indent(lines[0])
    if len(lines) > 1:
        text_at = _indent(lines[1])
        if text_at <= tag_at or any(_indent(line) < text_at for line in lines[1:]):
            return None
    elif columns is not None and columns[0] == tag_at:
        text_at = columns[1]
    else:
        return None
    first = lines[0].rstrip()
    gap = re.match(r"(\S.*?)\s{2,}$", first[tag_at:text_at]) if len(first) > text_at else None
    if gap is not None and not first[text_at].isspace():
        tag, rest = gap.group(1), [first[text_at:], *lines[1:]]
    elif len(lines) > 1:
        tag, rest = first.strip(), lines[1:]
    else:
        return None
    if len(tag) > _TAG_CHARS or len(tag.split()) > _TAG_WORDS or tag.endswith((".", ",", ";")):
        return None
    if _LIST_MARK.fullmatch(tag):
        return None  # a bullet or a number of a list, not a name: the item stays one paragraph
    if " [" in tag or rest[0].lstrip().startswith("["):
        return None  # a synopsis's usage line, its options continued on the lines below
    return tag, rest, (tag_at, text_at)


def joined(lines: list[str]) -> str:
    """Lines as one line: each stripped, a word hyphenated at a line's end put back together
    ("mes-" + "sage" -> "message", "IPv4-" + "only" -> "IPv4-only")."""
    out = ""
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        before = out[-2:-1]
        if out.endswith("-") and line[:1].islower() and before and not before.isspace():
            # a word the formatter hyphenated ("mes-sage"), or a compound cut at its own hyphen ("IPv4-only")
            out = (out[:-1] if before.isalpha() else out) + line
        else:
            out = f"{out} {line}" if out else line
    return re.sub(r"[ \t]+", " ", out)
