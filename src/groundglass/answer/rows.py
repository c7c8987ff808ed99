"""Which row of a source's table a value was taken from.

Pages keep their tables as Markdown rows (``| dig | DBL_DIG | maximum number of decimal digits |``),
each row group under its header. A small model asked about one row often answers with the figure or
name of the next one: "Which C macro does the dig attribute of sys.float_info correspond to?" got
"FLT_ROUNDS", the macro of the ``rounds`` row two tables further down. The value is in the source, so
looking it up (:func:`groundglass.answer.grounding.check`) passes; what is wrong is the row.

:func:`wrong_row` catches that case and nothing wider: the question names a row by its first cell
(its key, ``dig``), and every row that holds the sentence's value is a row that neither the question
nor the sentence names. It returns the named row (with its header), to show the model on its retry.
A value that appears outside tables, or in a row the question or sentence names, passes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+\s*$")
# An identifier-like word of the question (DBL_DIG, sys.float_info, %j): naming it in any cell of a row
# names that row.
_IDENT = re.compile(r"%\w|\w+(?:[._]\w+)+|\b[A-Z][A-Z0-9]{2,}\b")


@dataclass(frozen=True)
class Row:
    source: int  # 1-based number of the source the row is in
    header: str  # the header line of the row's table
    line: str  # the row itself, as the page has it
    key: str  # its first cell, lower-cased

    def cells(self) -> list[str]:
        return [c.strip() for c in self.line.strip().strip("|").split("|")]

    def quote(self) -> str:
        """The header and the row, for a retry's hint."""
        return f"{self.header} {self.line}"


def table_rows(texts: Sequence[str]) -> list[Row]:
    """The body rows of the Markdown tables in ``texts`` (one per source, in order)."""
    rows: list[Row] = []
    for number, text in enumerate(texts, start=1):
        header = ""
        lines = text.splitlines()
        for i, raw in enumerate(lines):
            line = raw.strip()
            if not (line.startswith("|") and line.endswith("|") and len(line) > 2):
                header = ""
                continue
            if _RULE.match(line):
                header = lines[i - 1].strip() if i else ""
                continue
            if not header:
                continue  # a header line, or a table without one: no row to tell apart
            key = line.strip("|").split("|", 1)[0].strip().lower()
            if key:
                rows.append(Row(number, header, line, key))
    return rows


def _names(term: str, text: str) -> bool:
    """``term`` occurs in ``text`` as a whole token (both lower-cased)."""
    return re.search(r"(?<![\w%])" + re.escape(term) + r"(?!\w)", text) is not None


def wrong_row(values: Sequence[str], sentence: str, question: str, texts: Sequence[str]) -> Row | None:
    """The row the question names, when some value of ``sentence`` is held only by rows of ``texts``
    that neither the question nor the rest of the sentence names; None otherwise."""
    rows = table_rows(texts)
    if not rows or not values:
        return None
    asked = question.lower()
    named = [r for r in rows if len(r.key) > 1 and _names(r.key, asked)]
    if not named:
        return None
    idents = {m.group(0).lower() for m in _IDENT.finditer(question)}
    for value in values:
        needle = " ".join(value.split()).lower()
        holding = [r for r in rows if _names(needle, " ".join(r.line.split()).lower())]
        if not holding:
            continue  # said outside the tables
        rest = sentence.lower().replace(needle, " ")
        if any(r in named or _names(r.key, rest) or _row_names_any(r, idents, needle) for r in holding):
            continue
        return named[0]
    return None


def _row_names_any(row: Row, idents: set[str], value: str) -> bool:
    cells = [c.lower() for c in row.cells() if c.lower() != value]
    return any(_names(i, c) for i in idents for c in cells)
