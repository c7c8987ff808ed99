"""Which row of a source's table a value was taken from.

Pages keep their tables as Markdown rows (``| dig | DBL_DIG | maximum number of decimal digits |``),
each row group under its header. A small model asked about one row often answers with the figure or
name of the next one: "Which C macro does the dig attribute of sys.float_info correspond to?" got
"FLT_ROUNDS", the macro of the ``rounds`` row two tables further down. The value is in the source, so
looking it up (:func:`groundglass.answer.grounding.check`) passes; what is wrong is the row.

:func:`wrong_row` catches that case and nothing wider: the question names a row by its first cell
(its key, ``dig``), and every row that holds the sentence's value is a row that neither the question
nor the sentence names. It returns the named row (with its header), to show the model on its retry.
A value that appears outside tables, or in a row the question or sentence names, passes. In a
sentence of two clauses ("... 'q' is 8 bytes, and ... 'd' is 2 bytes") each value is read against the
row its own clause names.

:func:`missing_row` is the case where the row asked about is not in the sources at all: a chunk holds
part of a table ("Minimum size in bytes" for 'b' to 'h'), the question asks about type code 'd', and
the model answered with the 2 of the 'h' row. Every row that holds the value has a key of the same
form as the one asked ('h' and 'd'), none is the asked one, so the value is not in the sources.

:func:`unstated_row` is the case where the question names a row by the words of its first cell, not an
identifier ("What is the maximum number of columns in a PostgreSQL table?" and ``| columns per table
| 1,600 | further limited by tuple size ... |``), and the sentence gives a figure, but not the row's:
the 1.5B model copied the note under the table instead ("The maximum number of columns ... is further
reduced as the tuple being stored must fit in a single 8192-byte heap page."), which its source holds,
so the value check passes, and which does not answer. Only a key of two content words or more, all of
them in the question and in the sentence, names a row, and only when no other row of the sources is
named so; a sentence that gives any figure of that row passes.

A value with a unit ("2 bytes") is looked up as its number in a cell when the unit is in the
column's header or the question ("Minimum size in bytes"), since tables print the number alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from groundglass.answer.grounding.clauses import split as split_clauses
from groundglass.answer.grounding.figures import numbers, same_number
from groundglass.answer.grounding.wording import content_stems

_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+\s*$")
# An identifier-like word of the question (DBL_DIG, sys.float_info, %j): naming it in any cell of a row
# names that row.
_IDENT = re.compile(r"%\w|\w+(?:[._]\w+)+|\b[A-Z][A-Z0-9]{2,}\b")
# A short quoted key the question or a clause names: type code 'd', format "q", `%j`.
_QUOTED_KEY = re.compile(r"""(['"`])([^'"`\s]{1,4})\1""")
_WITH_UNIT = re.compile(r"(-?\d[\d,.]*)\s+([a-z]+)")


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

    def labelled(self) -> str:
        """ "Codec: latin_1; Aliases: iso-8859-1, cp819; Languages: Western Europe" for a row under
        ``| Codec | Aliases | Languages |``; the row as written when the header does not match it."""
        names = [c.strip() for c in self.header.strip().strip("|").split("|")]
        cells = self.cells()
        if len(names) != len(cells):
            return self.quote()
        return "; ".join(f"{n}: {c}" if n else c for n, c in zip(names, cells, strict=True) if c)


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


def names_row(question: str, row: str) -> bool:
    """Whether ``question`` names the table row ``row`` by its first cell, case as written ("type code
    'd'" names "| 'd' | double | ...", not "| 'D' | ...")."""
    cells = row.strip().strip("|").split("|")
    key = cells[0].strip("`*'\" ") if cells else ""
    return bool(key) and re.search(r"(?<![\w%-])" + re.escape(key) + r"(?!\w)", question) is not None


def _names(term: str, text: str) -> bool:
    """``term`` occurs in ``text`` as a whole token (both lower-cased)."""
    return re.search(r"(?<![\w%])" + re.escape(term) + r"(?!\w)", text) is not None


def holding_rows(rows: list[Row], value: str, question: str, texts: Sequence[str]) -> tuple[list[Row], str]:
    """The rows that hold ``value``, and the text looked for: the value as written, else (a number
    with a unit, "2 bytes", that no text spells out) its number as a whole cell of a table whose
    header or question has the unit."""
    needle = " ".join(value.split()).lower()
    holding = [r for r in rows if _names(needle, " ".join(r.line.split()).lower())]
    unit = _WITH_UNIT.fullmatch(needle)
    if holding or unit is None or any(_names(needle, " ".join(t.split()).lower()) for t in texts):
        return holding, needle
    number, word = unit.groups()
    asked = question.lower()
    return [
        r for r in rows if number in r.cells()[1:] and (_names(word, r.header.lower()) or _names(word, asked))
    ], number


def _clause_of(needle: str, sentence: str) -> str:
    """The clause of ``sentence`` that states ``needle`` (the whole sentence when it has one clause)."""
    parts = split_clauses(sentence)
    return next((p for p in parts if needle in p.lower()), sentence) if len(parts) > 1 else sentence


def wrong_row(values: Sequence[str], sentence: str, question: str, texts: Sequence[str]) -> Row | None:
    """The row the question names, when some value of ``sentence`` is held only by rows of ``texts``
    that neither the question nor the rest of the sentence names; None otherwise. In a sentence of
    several clauses, the row named by the value's own clause, when it names one."""
    rows = table_rows(texts)
    if not rows or not values:
        return None
    asked = question.lower()
    named = [r for r in rows if len(r.key) > 1 and _names(r.key, asked)]
    if not named:
        return None
    idents = {m.group(0).lower() for m in _IDENT.finditer(question)}
    for value in values:
        holding, needle = holding_rows(rows, value, question, texts)
        if not holding:
            continue  # said outside the tables
        clause = _clause_of(needle, sentence.lower())
        own = [r for r in named if _names(r.key, clause)] or named
        rest = sentence.lower().replace(needle, " ")
        if any(r in own or _names(r.key, rest) or _row_names_any(r, idents, needle) for r in holding):
            continue
        return own[0]
    return None


def missing_row(
    values: Sequence[str], sentence: str, question: str, texts: Sequence[str]
) -> tuple[str, str] | None:
    """(value, key) when the sentence's clause asks about a short quoted key ('d') that no row of
    ``texts`` has, and the value stated for it is held only by rows whose keys have the same form: the
    sources do not hold the row, so the value was taken from another one. None otherwise."""
    rows = table_rows(texts)
    if not rows or not values:
        return None
    keys = {_bare(r.key) for r in rows}
    for value in values:
        holding, needle = holding_rows(rows, value, question, texts)
        if not holding:
            continue
        clause = _clause_of(needle, sentence.lower())
        for match in _QUOTED_KEY.finditer(clause):
            key = match.group(2).lower()
            if key in keys or not _names(match.group(0).lower(), question.lower()):
                continue  # its row is there (wrong_row's case), or the question never asked for it
            if all(len(_bare(r.key)) == len(key) for r in holding):
                return value, match.group(0)
    return None


def unstated_row(values: Sequence[str], sentence: str, question: str, texts: Sequence[str]) -> Row | None:
    """The row that ``question`` and ``sentence`` both name by the words of its key (module
    docstring), when the sentence's figures (``values`` that are numbers) include none of that row's;
    None otherwise. A sentence about another part of the question does not name the row."""
    figures = [n for v in values for n in numbers(v)]
    if not figures:
        return None
    row = named_in_words(content_stems(question) & content_stems(sentence), texts)
    if row is None:
        return None
    held = [n for cell in row.cells()[1:] for n in numbers(cell)]
    return None if any(same_number(f, h) for f in figures for h in held) else row


def named_in_words(stems: set[str], texts: Sequence[str]) -> Row | None:
    """The one row of ``texts`` with a figure whose key is two content words or more, all among
    ``stems`` ("columns per table" for "the maximum number of columns in a table"); None when no row
    or several rows are named so."""
    named = []
    for row in table_rows(texts):
        key = content_stems(row.key)
        if len(key) >= 2 and key <= stems and any(ch.isdigit() for ch in row.line):
            named.append(row)
    return named[0] if len({r.key for r in named}) == 1 else None


def _bare(key: str) -> str:
    return key.strip("'\"`")


def _row_names_any(row: Row, idents: set[str], value: str) -> bool:
    cells = [c.lower() for c in row.cells() if c.lower() != value]
    return any(_names(i, c) for i in idents for c in cells)
