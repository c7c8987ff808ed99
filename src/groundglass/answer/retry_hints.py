"""The source lines pointed out to the model when its first draft failed its check.

The retry names the source sentences closest to the question that say more than the question does,
so the model is pointed at the line that answers it rather than told only what was wrong; and the
table rows that hold a word of the question few rows hold, each cell with its column's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundglass.answer import cite, grounding, querytext, rows
from groundglass.answer.types import Source

# A row is pointed at for a question word that at most this many rows hold: a word in every row (the
# table's own subject) says nothing about which row answers.
ROW_WORD_MAX_ROWS = 2
_CELL_TOKEN = re.compile(r"[\w.+-]+")


def rows_naming(question: str, sources: Sequence[Source], *, most: int = 2) -> list[tuple[int, str]]:
    """Table rows that hold, in any cell, a word of ``question`` that few rows hold, as "Column: cell;
    ..." with their source numbers, for a retry's hint: the question names the row by one of its
    values, and the answer is another cell of it.

    Asked "Which codec in Python's standard encodings has the alias cp819?", the 1.5B model wrote "...
    is cp819" twice: the row (``| latin_1 | iso-8859-1, ..., cp819, latin, latin1, L1 | Western Europe
    |``) was in its sources, but as a line of cells under a header three rows up, and the hint sentences
    (by meaning) did not include it. Named by its columns (Codec: latin_1; Aliases: ...), the row says
    which cell is the codec."""
    found = rows.table_rows([s.text for s in sources])
    words = {w.lower() for w in querytext.content_words(question) if len(w) >= 3}
    holders: dict[str, list[rows.Row]] = {}
    for row in found:
        tokens = {t.lower().strip(".") for cell in row.cells() for t in _CELL_TOKEN.findall(cell)}
        for w in words & tokens:
            holders.setdefault(w, []).append(row)
    out: list[tuple[int, str]] = []
    for held in holders.values():
        if len(held) > ROW_WORD_MAX_ROWS:
            continue
        for row in held:
            hint = (row.source, _labelled(row))
            if hint not in out:
                out.append(hint)
    return out[:most]


def _labelled(row: rows.Row) -> str:
    """ "Codec: latin_1; Aliases: iso-8859-1, cp819; Languages: Western Europe" for a row under
    ``| Codec | Aliases | Languages |``; the row as written when the header does not match it."""
    names = [c.strip() for c in row.header.strip().strip("|").split("|")]
    cells = row.cells()
    if len(names) != len(cells):
        return row.quote()
    return "; ".join(f"{n}: {c}" if n else c for n, c in zip(names, cells, strict=True) if c)


def closest_sentences(
    question: str, sources: Sequence[Source], encoder: cite.Encoder, *, most: int = 3, floor: float = 0.3
) -> list[tuple[int, str]]:
    """The source sentences closest to ``question`` that say more than the question, best first, with
    their source numbers, for a retry's hint: at most ``most``, each within ``floor`` (MiniLM cosine).

    Closest is MiniLM cosine plus the rarity-weighted share of the question's words the sentence
    holds (what :mod:`condense` ranks by). One sentence was not enough: for "Which pickle protocol
    version is the default starting with Python 3.8?" the closest was "Protocol version 5 was added in
    Python 3.8.", and the model, pointed at it alone, declined; the answer ("Changed in version 3.8: The
    default protocol is 4.") came second."""
    from groundglass.answer.condense import lexical_scorer
    from groundglass.answer.sentences import split_sentences

    # a sentence made of the question's own words ("It is the default protocol starting with Python
    # 3.8.") would only lead the model to restate the question again
    numbered = list(
        dict.fromkeys(
            (n, s.lstrip("-*• ").strip())
            for n, src in enumerate(sources, start=1)
            for s in split_sentences(src.text)
            if 20 <= len(s) <= 400 and not grounding.restates_question(s, question)
        )
    )
    if not numbered:
        return []
    vectors = encoder.encode([question, *[s for _, s in numbered]])
    cosine = vectors[1:] @ vectors[0]
    lexical = lexical_scorer([s for _, s in numbered], question)
    scored = [
        (float(c) + lexical(s), (n, s)) for c, (n, s) in zip(cosine, numbered, strict=True) if c >= floor
    ]
    scored.sort(key=lambda x: -x[0])
    return [pair for _, pair in scored[:most]]
