"""A figure said of a name that the sources pair with another figure.

Reference pages list codes and constants as name-figure pairs: SQLite's result codes page reads
"SQLITE_CONSTRAINT (19) SQLITE_CORRUPT (11) SQLITE_DONE (101) SQLITE_EMPTY (16) SQLITE_ERROR (1) ...",
a header ``SQLITE_OK = 0``. Asked for SQLITE_CONSTRAINT's value, the default model answered 1 and, in
another run, 16: the figures of the names beside it. Each is in the cited text, so the value check
passes. :func:`mispaired` catches that case and nothing wider: a clause names exactly one such name
(``snake_case`` or ``UPPER_CASE`` with an underscore), the sources pair that name with figures, the
clause's figure is none of them, and the sources pair it with another name.

The page's own sections are headed the other way round, "(19) SQLITE_CONSTRAINT", and the passage the
model cites may hold only other codes' headings: it answered "SQLITE_CONSTRAINT ... is 3082 [3]" from
"(3082) SQLITE_IOERR_NOMEM". So a figure the cited text pairs only with other names of the clause's
name's family (the same first part, ``sqlite_``) fails too when that text does not pair the clause's
name at all: a constant of that family has one value, and it is not another constant's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from groundglass.answer.grounding import clauses
from groundglass.answer.grounding.evidence import Evidence
from groundglass.answer.grounding.figures import numbers

# "SQLITE_CONSTRAINT (19)", "SQLITE_OK = 0"; "name(1)" is a call, not a pair
_PAIR = re.compile(
    r"(?<![\w.])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?:\s+\((-?\d+)\)|\s*=\s*(-?\d+)\b)", re.IGNORECASE
)
# "(19) sqlite_constraint": a section heading that gives the figure first
_HEADED = re.compile(r"(?<![\w)])\((-?\d+)\)\s+([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b(?!\()", re.IGNORECASE)
# "ThreadPoolExecutor(max_workers=4)": a keyword argument, the value one call passes (an example's),
# not a constant's; a signature's defaults are read by extractive.signature_default
_ARGUMENT_AFTER = ("(", ",")
_NAME = re.compile(r"(?<![\w.])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")
_ASKS_VALUE = re.compile(r"\b(?:value|number|numeric|code)\b", re.IGNORECASE)


def mispaired(sentence: str, evidence: Evidence) -> list[str]:
    """The figures of ``sentence`` that the cited text pairs with another name than the one their
    clause names, when it pairs that name with other figures (module docstring)."""
    pairs: dict[str, set[float]] = defaultdict(set)
    for _, name, figure in pairs_of(evidence.text):
        pairs[name].add(figure)
    if not pairs:
        return []
    out: list[str] = []
    for clause in clauses.split(sentence):
        names = named(clause)
        paired = names & pairs.keys()
        if len(paired) == 1:
            (name,) = paired
            others = [held for other, held in pairs.items() if other != name]
        elif not paired and len(names) == 1:
            (name,) = names
            others = [held for other, held in pairs.items() if _family(other) == _family(name)]
        else:
            continue
        for figure in numbers(clause):
            if figure.unit is not None or figure.value in pairs.get(name, ()):
                continue
            if any(figure.value in held for held in others):
                out.append(figure.text)
    return out


def asks_value(question: str) -> str | None:
    """The one name of the pairs' shape that ``question`` asks the value of ("What is the numeric value
    of the SQLITE_CONSTRAINT result code ...?"), lower-cased; None when it names none, or several, or
    asks no value."""
    names = named(question)
    if len(names) != 1 or not _ASKS_VALUE.search(question):
        return None
    return next(iter(names))


def contradicted(sentence: str, question: str, texts: Sequence[str]) -> tuple[str, int, str] | None:
    """(the figure, the text's position, the pair as it writes it) when ``sentence`` gives the name
    ``question`` asks the value of a figure, and ``texts`` (every source the model was given, cited or
    not) pair that name only with other figures: a constant has one value, and a pair in any source
    says which. The 1.5B model answered "The numeric value of the SQLITE_CONSTRAINT result code is
    16." with "(19) SQLITE_CONSTRAINT" in a source it did not cite. None otherwise."""
    name = asks_value(question)
    if name is None:
        return None
    held = pairs_naming(name, texts)
    if not held:
        return None
    figures = {figure for _, _, figure in held}
    for clause in clauses.split(sentence):
        if named(clause) != {name}:
            continue  # another constant's figure may be said beside it
        for figure in numbers(clause):
            if figure.unit is None and figure.value not in figures:
                i, quote, _ = held[0]
                return figure.text, i, " ".join(quote.split())
    return None


def pairs_naming(name: str, texts: Sequence[str]) -> list[tuple[int, str, float]]:
    """(the text's position, the pair as it writes it, the figure) of each pair in ``texts`` that
    names ``name`` (lower-cased)."""
    return [(i, quote, figure) for i, t in enumerate(texts) for quote, n, figure in pairs_of(t) if n == name]


def pairs_of(text: str) -> list[tuple[str, str, float]]:
    """(the pair as ``text`` writes it, the name lower-cased, the figure) of each name-figure pair in
    ``text``: "SQLITE_CONSTRAINT (19)", "SQLITE_OK = 0", "(19) SQLITE_CONSTRAINT"."""
    found = [
        (m.start(), m.group(0), m.group(1), m.group(2) or m.group(3))
        for m in _PAIR.finditer(text)
        if m.group(3) is None
        or not text[max(0, m.start() - 40) : m.start()].rstrip().endswith(_ARGUMENT_AFTER)
    ]
    found += [(m.start(), m.group(0), m.group(2), m.group(1)) for m in _HEADED.finditer(text)]
    return [(quote, name.lower(), float(figure)) for _, quote, name, figure in sorted(found)]


def named(text: str) -> set[str]:
    """The names of the shape pairs are made of (``snake_case``, ``UPPER_CASE``) in ``text``, lower-cased."""
    return {n.lower() for n in _NAME.findall(text)}


def _family(name: str) -> str:
    return name.split("_", 1)[0]
