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
Pages whose headings came through are left as trafilatura made them.

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
_MARK = "GGHEAD{}X"  # letters and a digit only, like the table and term marks: trafilatura leaves them
_MARKED = re.compile(r"^(?:[-*] )?GGHEAD([1-6])X ?(.*)$", re.MULTILINE)
_MARKDOWN_HEADING = re.compile(r"^#{1,6} \S", re.MULTILINE)
# SQLite's hidden entry titles: HTML has no <h> element; its generator writes one for its search index
_HIDDEN_TITLES = "//body//h"
_PREVIOUS_HEADING = "preceding::*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5][1]"
MAX_TITLE_CHARS = 100  # a title, not a paragraph hidden in a heading
MIN_HEADINGS = 2  # a page with one heading (its title) loses nothing worth a second extraction


def heading_count(tree: Any) -> int:
    """How many headings the page's parsed tree has (counted before trafilatura, which changes it)."""
    return len(tree.xpath(_HEADINGS))


def headings_lost(count: int, markdown: str) -> bool:
    """Whether a page with ``count`` headings has none in its extracted ``markdown``."""
    return count >= MIN_HEADINGS and _MARKDOWN_HEADING.search(markdown) is None


def mark_headings(tree: Any) -> None:
    """Each heading of ``tree`` made a paragraph: its level's mark, then its text on one line."""
    for heading in tree.xpath(_HEADINGS):
        text = " ".join(heading.text_content().split())
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
        text = " ".join(title.text_content().split())
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
