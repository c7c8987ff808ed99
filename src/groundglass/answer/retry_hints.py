"""The source lines pointed out to the model when its first draft failed its check.

The retry names the source sentences closest to the question that say more than the question does,
so the model is pointed at the line that answers it rather than told only what was wrong; and the
table rows that hold a word of the question few rows hold, each cell with its column's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundglass.answer import cite, grounding, querytext, rows
from groundglass.answer.sentences import OPENING_PRONOUN, without_bullet
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
            hint = (row.source, row.labelled())
            if hint not in out:
                out.append(hint)
    return out[:most]


def _candidates(sentences: list[str], question: str) -> list[tuple[str, str]]:
    """The sentences that may be pointed at: those that say more than the question (one made of the
    question's own words would only lead the model to restate the question again). A sentence that
    opens with a pronoun is shown after the sentence that names what it is about: "It is the default
    protocol starting with Python 3.8." alone names no protocol, and pointed at it and at "Protocol
    version 5 was added in Python 3.8.", the 1.5B model wrote "protocol 5" again; "Protocol version 4
    was added in Python 3.4. ... It is the default protocol starting with Python 3.8." answers. Each
    comes as (what is shown, what is ranked): the pronoun's sentence is ranked on its own words."""
    bare = [without_bullet(s) for s in sentences]
    out: list[tuple[str, str]] = []
    for i, sentence in enumerate(bare):
        shown = sentence
        if OPENING_PRONOUN.match(sentence):
            named = next((b for b in reversed(bare[max(0, i - 3) : i]) if not OPENING_PRONOUN.match(b)), None)
            if named is None:
                continue
            shown = f"{named} ... {sentence}"
        if 20 <= len(shown) <= 400 and not grounding.restates_question(shown, question):
            out.append((shown, sentence))
    return out


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

    numbered = list(
        dict.fromkeys(
            (n, shown, ranked)
            for n, src in enumerate(sources, start=1)
            for shown, ranked in _candidates(split_sentences(src.text), question)
        )
    )
    if not numbered:
        return []
    ranked = [r for _, _, r in numbered]
    vectors = encoder.encode([question, *ranked])
    cosine = vectors[1:] @ vectors[0]
    lexical = lexical_scorer(ranked, question)
    scored = [
        (float(c) + lexical(r), (n, s)) for c, (n, s, r) in zip(cosine, numbered, strict=True) if c >= floor
    ]
    scored.sort(key=lambda x: -x[0])
    return [pair for _, pair in scored[:most]]
