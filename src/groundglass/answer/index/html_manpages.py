"""Manual pages rendered as HTML (man2html, groff's ``-Thtml``: one ``<pre>`` of the whole page, names in
``<b>``, arguments in ``<i>``) made into headed paragraphs before trafilatura reads them.

trafilatura reads such a ``<pre>`` as prose with emphasis and writes its Markdown: the line breaks go,
the whole page becomes one paragraph, and a name set in pieces of bold and italic comes back as
Markdown residue: Postfix's ``postsuper [-c <i>config</i><b>_</b><i>dir</i>] [-d <i>queue</i><b>_</b>...``
read ``[-c config**_dir] [-d** queue**_id]``, which the model copied into its answer. Here the
emphasis is dropped (a manual's bold is not a code span), each run of lines between blank lines
becomes a paragraph with its lines joined (hyphenated words put back together), and a line of capitals
at the left margin ("DESCRIPTION", "SEE ALSO") becomes a heading, so the page has sections as its
manual has. A ``<pre>`` without such emphasis is code, and is left to trafilatura.
"""

from __future__ import annotations

import re
from typing import Any

_EMPHASIS = ("b", "i", "u", "em", "strong", "font")
_HEADING = re.compile(r"[A-Z][A-Z0-9 ,/()-]{1,58}[A-Z)]")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def manual_pages_as_text(tree: Any) -> None:
    """Each ``<pre>`` of ``tree`` set in bold or italic replaced by headings and paragraphs (in place)."""
    for pre in tree.xpath("//pre[.//b or .//i]"):
        _as_paragraphs(pre)


def _as_paragraphs(pre: Any) -> None:
    import lxml.html

    for element in list(pre.iterdescendants(*_EMPHASIS)):
        element.drop_tag()  # its text and tail stay
    div = lxml.html.Element("div")
    for block in _BLANK_LINE.split(pre.text_content()):
        lines = block.rstrip().splitlines()
        if lines and not lines[0][:1].isspace() and _HEADING.fullmatch(lines[0].strip()):
            lxml.html.etree.SubElement(div, "h2").text = lines.pop(0).strip()
        text = joined(lines)
        if text:
            lxml.html.etree.SubElement(div, "p").text = text
    div.tail = pre.tail
    pre.getparent().replace(pre, div)


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
