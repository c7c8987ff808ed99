"""Definition lists in extracted text: which term a line describes.

Manuals describe settings, options and functions in definition lists (HTML's ``<dt>``/``<dd>``), and
extraction writes a term as a list item that ends with a colon, its description as the next item::

    - max_connections (integer):
    - Determines the maximum number of concurrent connections ... The default is typically 100
      connections ...

A sentence deep in a description names its subject only through the term ("The default is typically
100 connections"). Cut away from it, by a chunk boundary or by condensing, the sentence reads as a fact
about whatever term comes before it in the prompt (the default of the next setting became
``max_connections``'s). Chunking carries the term into a chunk that starts inside its description, and
condensing keeps the term with any sentence it keeps from the description and scores the sentence with
the term's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TERM_LINE = re.compile(r"^[-*•] (?P<term>\S[^\n]{0,300}):$")
TERM_MARK = "GGTERMX"  # put before each <dt>'s text while trafilatura runs; letters only, like the table mark
_MARKED = re.compile(rf"^(?P<bullet>[-*•] )?{TERM_MARK} ?(?P<term>.*?)[\s:]*$", re.MULTILINE)


def is_term(line: str) -> bool:
    """Whether ``line`` is a term of a definition list (as extraction writes it)."""
    return TERM_LINE.match(line.strip()) is not None


def terms_in(text: str) -> list[str]:
    """The names of the terms ``text`` has term lines of."""
    return [term_name(line) for line in text.splitlines() if is_term(line)]


def term_name(line: str) -> str:
    """The name a term line defines: ``max_connections`` of ``- max_connections (integer):``,
    ``pprint.pformat`` of a signature."""
    m = TERM_LINE.match(line.strip())
    term = m.group("term") if m else line.strip()
    return term.split("(", 1)[0].strip()


def term_lines(text: str) -> str:
    """Extracted text with each marked ``<dt>`` line written as a term: ``- name (type):``. A mark
    extraction left inside a line (a term inside a table cell or a heading) is dropped."""

    def term(m: re.Match[str]) -> str:
        name = m.group("term").strip()
        return f"- {name}:" if name else ""

    return unmarked(_MARKED.sub(term, text))


def unmarked(text: str) -> str:
    """``text`` without term marks (a heading or title that held a term)."""
    return text.replace(f"{TERM_MARK} ", "").replace(TERM_MARK, "")


def described_by(lines: Sequence[str], i: int) -> int | None:
    """The index of the term line that ``lines[i]`` (a description item, or a line that continues
    one) describes: the line just before it, when that is a term; else None."""
    if i <= 0 or is_term(lines[i]):
        return None
    return i - 1 if is_term(lines[i - 1]) else None
