"""A page's headings kept through trafilatura when its own extraction loses them.

trafilatura looks for the page's main frame (an ``<article>``, a ``<div class="post-content">``...). When
none matches, as on SQLite's documentation and PostgreSQL's program reference pages (``pg_ctl``,
``createdb``), it gathers the page's paragraphs instead ("wild text"), and headings are not among them:
SQLite's result-code page came out with the text of each code but not its heading, ``(2067)
SQLITE_CONSTRAINT_UNIQUE``, which is the only place the page gives the code's value. Without headings a
page is also one section, so its chunks say nothing of what part of the page they are from.

When the Markdown has no heading although the page has several, extraction runs again with each
heading made a paragraph that starts with a mark (:func:`mark_headings`), which every path of trafilatura
keeps; the marks are written back as Markdown headings of the same level (:func:`unmark_headings`).
Pages whose headings came through are left as trafilatura made them. Whether they did is judged by the
headings' text, not by the mere presence of Markdown headings: Apache httpd's manual writes its
configuration examples in ``<pre>`` blocks that trafilatura flattens into paragraphs, and their
``# comment`` lines read as Markdown headings, while every directive's ``<h2>`` was dropped. In the
marked extraction such lines are escaped, so only the page's own headings head sections. A heading's
permalink sign (``¶``, which Sphinx and Apache's pages append) is not part of its text.

SQLite's pragma page titles each of its 74 entries with a hidden ``<h _id=pragma_cache_size
style="display:none">`` that only its own search reads; trafilatura drops it, and the whole list
became one section, so the chunk that says
"The default suggested cache size is -2000" was "List Of PRAGMAs" and did not name cache_size.
:func:`show_hidden_titles` makes each such title a (marked) heading one level below the visible one
before it.
"""

from __future__ import annotations

import re
from typing import Any

_HEADINGS = "//body//*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5 or self::h6]"
# a sidebar's or a navigation bar's headings ("Previous topic", "This Page"): no content to keep
_NAVIGATION = (
    "ancestor::nav or ancestor::aside or ancestor::footer or ancestor::*[@role='navigation'] "
    "or ancestor::*[contains(@class, 'sidebar')]"
)
_MARK = "GGHEAD{}X"  # letters and a digit only, like the table and term marks: trafilatura leaves them
_MARKED = re.compile(r"^(?:[-*] )?GGHEAD([1-6])X ?(.*)$", re.MULTILINE)
_MARKDOWN_HEADING_LINE = re.compile(r" {0,3}#{1,6} (\S.*)$")  # as CommonMark reads one
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
PERMALINK = "\u00b6"  # the pilcrow a page puts after a heading as a link to it
# SQLite's hidden entry titles: HTML has no <h> element; its generator writes one for its search index
_HIDDEN_TITLES = "//body//h"
_PREVIOUS_HEADING = "preceding::*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5][1]"
MAX_TITLE_CHARS = 100  # a title, not a paragraph hidden in a heading
MIN_HEADINGS = 2  # a page with one heading (its title) loses nothing worth a second extraction


def _key(text: str) -> str:
    """A heading's text for comparison: words only (Markdown's emphasis and code marks, permalink signs
    and punctuation dropped), case folded."""
    return " ".join(re.sub(r"[\W_]+", " ", text).split()).casefold()


def heading_text(heading: Any) -> str:
    """A heading element's text on one line, without its permalink sign."""
    return " ".join(heading.text_content().replace(PERMALINK, " ").split())


def page_headings(tree: Any) -> list[str]:
    """The page's content headings (their comparison keys, each once; a navigation bar's left out),
    read before trafilatura, which changes the tree. Sphinx repeats its sidebar's five headings above
    and below the page, and they outnumbered a page's own."""
    keys = (_key(heading_text(h)) for h in tree.xpath(f"{_HEADINGS}[not({_NAVIGATION})]"))
    return list(dict.fromkeys(key for key in keys if key))


def _outside_code(markdown: str) -> list[tuple[int, str]]:
    """The lines of ``markdown`` outside fenced code blocks, with their index among all its lines."""
    out: list[tuple[int, str]] = []
    fence = ""
    for n, line in enumerate(markdown.split("\n")):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1).startswith(fence):
                fence = ""
        elif opening:
            fence = opening.group(1)
        else:
            out.append((n, line))
    return out


def headings_lost(headings: list[str], markdown: str) -> bool:
    """Whether the extracted ``markdown`` heads its sections with fewer than half of the page's
    ``headings`` (lines that only look like headings, such as a code sample's comments, do not count)."""
    if len(headings) < MIN_HEADINGS:
        return False
    kept = {
        _key(m.group(1)) for _, line in _outside_code(markdown) if (m := _MARKDOWN_HEADING_LINE.match(line))
    }
    return 2 * sum(key in kept for key in headings) < len(headings)


def escape_stray_headings(markdown: str) -> str:
    """``markdown`` extracted with the headings marked, its remaining heading-like lines outside code
    blocks (a flattened code sample's ``# comment``) escaped, so that they stay text."""
    lines = markdown.split("\n")
    for n, line in _outside_code(markdown):
        if _MARKDOWN_HEADING_LINE.match(line):
            at = line.index("#")
            lines[n] = line[:at] + "\\" + line[at:]
    return "\n".join(lines)


def mark_headings(tree: Any) -> None:
    """Each heading of ``tree`` made a paragraph: its level's mark, then its text on one line."""
    for heading in tree.xpath(_HEADINGS):
        text = heading_text(heading)
        for child in list(heading):
            heading.remove(child)
        heading.text = f"{_MARK.format(heading.tag[1])} {text}" if text else ""
        heading.tag = "p"


def unmark_headings(markdown: str) -> str:
    """The marked paragraphs of ``markdown`` written as Markdown headings (an empty one dropped)."""

    def heading(m: re.Match[str]) -> str:
        text = m.group(2).strip()
        return "#" * int(m.group(1)) + " " + text if text else ""

    return _MARKED.sub(heading, markdown)


def show_hidden_titles(tree: Any) -> None:
    """Each hidden entry title (``<h>``) of ``tree`` made a heading one level below the heading before
    it (level 4 when there is none), marked as :func:`mark_headings` marks them (so
    :func:`unmark_headings` must run on the Markdown); one too long to be a title is dropped."""
    for title in tree.xpath(_HIDDEN_TITLES):
        text = heading_text(title)
        if not text or len(text) > MAX_TITLE_CHARS:
            title.drop_tree()
            continue
        before = title.xpath(_PREVIOUS_HEADING)
        level = min(int(before[0].tag[1]) + 1, 6) if before else 4
        parent = title.getparent()
        if parent is not None and parent.tag == "p":
            # an unclosed <p> before it took it in: the title and what follows it go after that paragraph,
            # or its mark would stand inside a line
            at = parent
            for element in [title, *title.itersiblings()]:
                at.addnext(element)
                at = element
        for child in list(title):
            title.remove(child)
        title.attrib.clear()
        # marked, as mark_headings does: trafilatura dropped the <h4>s that stood outside a paragraph
        title.text = f"{_MARK.format(level)} {text}"
        title.tag = "p"
