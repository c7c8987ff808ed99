"""Denser sources: the sentences of each chunk that answer the question, with their neighbours.

    sources = condense(sources, question, llm.count_tokens)   # before rank.fit_budget

A chunk is ~180 word pieces of which one or two sentences usually hold the answer; the rest is
prompt the model has to pre-fill (the slowest part of an answer on a CPU) and distractors for a small
model. For every source longer than ``max_tokens`` this keeps:

- its heading line (the first line, when it is short and does not end like a sentence);
- the best-scoring sentence and the one before and after it (and, when it opens with a pronoun, the
  sentences it points back to, whose words it is scored with: in random's "Python uses the Mersenne
  Twister as the core generator. It produces 53-bit precision floats and has a period of 2**19937-1.",
  the second sentence holds only "period" of the question's words, and was cut as the first sentence
  was kept with its other neighbour), then the next best sentences (each with
  its neighbours while they fit), as long as they score at least ``keep_ratio`` of the best one and
  the source stays within ``max_tokens``;
- an interactive example (``>>> ...``) that a page's extraction ran into a sentence as a piece of its
  own, kept when it scores (its output may be the answer) but never only for being a neighbour;
- Markdown table rows (``| a | b |``) whole, never split at a sentence boundary, and with the header
  row (and its ``|---|`` line) of their table whenever one of its rows is kept;
- a definition's term line (``- max_connections (integer):``) whenever a sentence of its description is
  kept, and no neighbour from another definition (:mod:`groundglass.answer.definitions`); a sentence of
  a description is scored with its term's name, which is what it is about.

The kept pieces stay in the order of the text; a gap between two of them on one line is shown as
" … ". A sentence's score is the share of the question's content words it holds, weighted by their
rarity among all the sources' sentences (so a word every sentence has counts little), plus one for each
verbatim term of the question it holds (``%j``, ``--flag``, ``os.path``: word tokenizers lose them) and for
a table row whose first cell the question names (``| dig | DBL_DIG |``),
plus its MiniLM cosine with the question when an ``embed`` function is given (what the engine
passes), plus one when the question asks about a default and the sentence states one with its value
("It defaults to 64 megabytes (64MB)."): in maintenance_work_mem's entry, "... so be careful not to set
the default value too high" holds more of "What is the default value of maintenance_work_mem?" and
filled the source's room, and the sentence with the default was cut. Sources with no sentence that
scores above zero, and short ones, are left as they are.

``MAX_TOKENS`` stays 110. A cap of 80 shortened the Python docs eval's prompts from 425 to 365 tokens
(web) and 536 to 457 (index), and every expected answer value stayed in the sources of the same questions;
web answers were as often right (0.94 / 0.81) in 0.59x the naive pipeline's time. But in index mode
three right answers were lost: with less around the value the model restated the question without it
("The pickle protocol version is the default starting with Python 3.8, as stated in [1].") or repeated
itself, and the draft was refused; at 110 the same questions were answered right.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from groundglass.answer import querytext
from groundglass.answer.definitions import described_by, is_term, term_name
from groundglass.answer.grounding.defaults import asks_default, states_default
from groundglass.answer.rank import TABLE_ROW
from groundglass.answer.rows import names_row
from groundglass.answer.sentences import split_sentences
from groundglass.answer.types import Source

MAX_TOKENS = 110  # per source, after condensing (LLM tokens): the module docstring says why not 80
KEEP_RATIO = 0.6  # further sentences must score at least this share of the best one
DEFAULT_STATED = 1.0  # added for a sentence that states a default, when the question asks one
GAP = " … "

_TABLE_RULE = re.compile(r"^\s*\|(\s*:?-{2,}:?\s*\|)+\s*$")
# A sentence that opens with one of these leans on the one before it.
_ANAPHOR = re.compile(
    r"(?:[-*•]\s+)?(?:it|its|this|these|they|their|he|she|his|her|such|that|those|both)\b", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"[.!?…:;\"'”’)]\s*$")
# Where an interactive example starts inside a line: extracted pages flatten a code block into the
# sentence before it ("... (defaulting to 28 places) which can be as large as needed: >>> from decimal
# import * >>> getcontext().prec = 6 ..."), which made that sentence too long to keep with anything else.
_DOCTEST = re.compile(r"\s+(?=>>>\s)")

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class _Unit:
    text: str
    line: int  # line of the source text it comes from
    kind: str  # "heading", "sentence", "row" or "rule" (a table's |---| line)
    table: int = -1  # table block number, for rows
    header: bool = False  # the first row of its table block
    term: int = -1  # the unit of the definition term whose description this is part of
    subject: str = ""  # that term's name: what the sentence is about ("max_connections")
    entry: int = -1  # the definition (its term's unit) this unit is part of, term line included
    code: bool = False  # an interactive example (">>> ..."): kept for its own score, never as a neighbour
    points_to: str = ""  # what an opening pronoun points back to: the sentences before it (_antecedents)

    @property
    def said(self) -> str:
        """What the unit says, its subject included: the text it is scored on."""
        return " ".join(t for t in (self.subject, self.points_to, self.text) if t)


def _units(text: str) -> list[_Unit]:
    units: list[_Unit] = []
    table = -1
    in_table = False
    lines = text.splitlines()
    stripped = [line.strip() for line in lines]
    first: dict[int, int] = {}  # line -> its first unit
    for n, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            in_table = False
            continue
        if TABLE_ROW.match(line):
            if not in_table:
                table += 1
                in_table = True
                units.append(_Unit(line, n, "row", table, header=True))
            else:
                units.append(_Unit(line, n, "rule" if _TABLE_RULE.match(line) else "row", table))
            continue
        in_table = False
        if n == 0 and len(lines) > 1 and len(line) <= 80 and not _SENTENCE_END.search(line):
            units.append(_Unit(line, n, "heading"))
            continue
        first[n] = len(units)
        described = described_by(stripped, n)
        term = first.get(described, -1) if described is not None else -1
        subject = term_name(stripped[described]) if described is not None else ""
        entry = first[n] if is_term(line) else term
        units.extend(
            _Unit(piece, n, "sentence", term=term, subject=subject, entry=entry, code=piece.startswith(">>>"))
            for s in split_sentences(line)
            for piece in _DOCTEST.split(s)
        )
    for i, u in enumerate(units):
        if back := _antecedents(units, i):
            u.points_to = " ".join(units[j].text for j in sorted(back))
    return units


def _join(units: Sequence[_Unit], picked: Sequence[int]) -> str:
    out = ""
    prev = None
    for i in sorted(picked):
        u = units[i]
        if prev is None:
            out = u.text
        elif u.line != units[prev].line:
            out += "\n" + u.text
        else:
            out += (" " if i == prev + 1 else GAP) + u.text
        prev = i
    return out


def lexical_scorer(texts: Sequence[str], query: str) -> Callable[[str], float]:
    """Rarity-weighted share of the query's content stems that a sentence holds (0..1)."""
    wanted = querytext.content_stems(query)
    verbatim = querytext.Verbatim.of(query)
    if not wanted and not verbatim:
        return lambda _t: 0.0
    df = dict.fromkeys(wanted, 0)
    for t in texts:
        for s in querytext.content_stems(t) & wanted:
            df[s] += 1
    n = max(1, len(texts))
    idf = {s: math.log(1 + n / (1 + df[s])) for s in wanted}
    total = sum(idf.values()) or 1.0

    def score(text: str) -> float:
        # a verbatim term of the question ("%j"), or the table row it names, outweighs any share of its words
        # summed in a fixed order, so that a tie is a tie in every run (a set's order is not)
        words = sum(idf[s] for s in sorted(querytext.content_stems(text) & wanted)) / total
        return words + verbatim.hits(text)

    return score


def condense(
    sources: Sequence[Source],
    query: str,
    count_tokens: Callable[[str], int],
    *,
    max_tokens: int = MAX_TOKENS,
    keep_ratio: float = KEEP_RATIO,
    embed: Embed | None = None,
    parts: Sequence[str] = (),
) -> list[Source]:
    """``sources`` with each text longer than ``max_tokens`` cut down to its answering sentences.
    ``parts``: the sub-queries a question of several parts was split into; a sentence scores as well
    as it answers the whole ``query`` or any one part. Against the whole question, the words of one
    part are common among the sources of both, and "UPSERT syntax was added to SQLite with version
    3.24.0" lost its place to a sentence that held more of the other part's words."""
    per_source = [_units(s.text) if count_tokens(s.text) > max_tokens else [] for s in sources]
    scorable = [u.text for units in per_source for u in units if u.kind in ("sentence", "row")]
    if not scorable:
        return list(sources)
    queries = list(dict.fromkeys([query, *parts]))
    lexical = [lexical_scorer(scorable, q) for q in queries]
    verbatim = querytext.Verbatim.of(query)
    dense: list[dict[str, float]] = [{} for _ in queries]
    if embed is not None:
        vecs = embed([*queries, *scorable])
        sentences = vecs[len(queries) :]
        dense = [
            {t: float(v) for t, v in zip(scorable, sentences @ vecs[i], strict=True)}
            for i in range(len(queries))
        ]
    stated = [DEFAULT_STATED if asks_default(q) else 0.0 for q in queries]
    named = [querytext.literal_terms(q) for q in queries]

    def scorer(src: Source) -> Callable[[_Unit], float]:
        # a part's default counts in a source that names what the part names (or when it names
        # nothing): in ab's option list, "Default is no KeepAlive" took all the room from "-n
        # requests: Number of requests to perform" with the bonus of the other part, "what is the
        # default value of LimitRequestFields"
        whole = f"{src.title}\n{src.text}"
        bonus = [
            stated[i] if not named[i] or querytext.literal_hits(whole, named[i]) else 0.0
            for i in range(len(queries))
        ]

        def score(u: _Unit) -> float:
            return max(
                lexical[i](u.said)
                + dense[i].get(u.text, 0.0)
                + (bonus[i] if bonus[i] and states_default(u.text) else 0.0)
                for i in range(len(queries))
            )

        return score

    out: list[Source] = []
    for src, units in zip(sources, per_source, strict=True):
        if not units:
            out.append(src)
            continue
        text = _pick(
            units,
            scorer(src),
            count_tokens,
            max_tokens,
            keep_ratio,
            verbatim=verbatim.hits,
            asked_row=lambda row: names_row(query, row),
        )
        out.append(replace(src, text=text) if text else src)
    return out


def _pick(
    units: list[_Unit],
    score: Callable[[_Unit], float],
    count_tokens: Callable[[str], int],
    max_tokens: int,
    keep_ratio: float,
    verbatim: Callable[[str], float] = lambda _t: 0.0,
    asked_row: Callable[[str], bool] = lambda _t: False,
) -> str:
    """The kept units of one source joined, or '' to keep the source whole."""
    # a table's header row is kept with its rows, never for itself: "| attribute | float.h macro |
    # explanation |" holds two words of "Which C macro does the dig attribute ... correspond to?", and
    # took the room of rows as a header with none under it
    scores = {
        i: score(u) for i, u in enumerate(units) if u.kind == "sentence" or (u.kind == "row" and not u.header)
    }
    order = sorted(scores, key=lambda i: (-scores[i], i))
    if not order or scores[order[0]] <= 0:
        return ""
    # The bar for further sentences leaves out the verbatim-term bonus: the line that names
    # "SMTP.connect(...)" scores one more per term, and measured against it, "The defaults are to
    # connect to the local host at the standard SMTP port (25)." fell below the bar and was cut.
    plain = {i: scores[i] - verbatim(units[i].said) for i in scores}
    best = max(plain.values())
    picked: set[int] = {i for i, u in enumerate(units) if u.kind == "heading"}

    def with_context(ids: set[int]) -> set[int]:
        extra = set()
        for i in ids:
            if units[i].term >= 0:
                extra.add(units[i].term)  # a description's sentence keeps the term it describes
            if units[i].kind == "row":
                extra |= {
                    j
                    for j, u in enumerate(units)
                    if u.table == units[i].table and (u.header or u.kind == "rule")
                }
        return ids | extra

    def fits(ids: set[int]) -> bool:
        return count_tokens(_join(units, sorted(ids))) <= max_tokens

    for rank, i in enumerate(order):
        if (
            rank > 0
            and plain[i] < keep_ratio * best
            and not (units[i].kind == "row" and asked_row(units[i].text))
        ):
            # ordered by the full score, so a later one may still clear the bar; a table row the
            # question names needs none of its words ("| 'd' | double | float | 8 |" for type code 'd')
            continue
        if i in picked:
            continue
        antecedents = _antecedents(units, i)
        # neighbours from another definition's entry are another setting's facts ("The default is three."
        # before "- autovacuum_naptime (integer):" is the previous setting's default)
        neighbours = {
            j
            for j in (i - 1, i, i + 1)
            if 0 <= j < len(units)
            and units[j].kind != "heading"
            and units[j].entry == units[i].entry
            and (j == i or not units[j].code)
        }
        # a sentence that opens with a pronoun means nothing without what it points back to
        # a sentence of a definition never comes without its term: alone, "The default is three."
        # reads as the default of the term shown next
        # what a lead-in introduces comes with it, unless only the sentence alone fits
        options = [neighbours | antecedents, antecedents | {i}, *([] if antecedents else [{i}])]
        for ids in [*(_introduced(units, o) for o in options), options[-1]]:
            grown = with_context(picked | ids)
            if fits(grown):
                picked = grown
                break
        else:
            if rank == 0:  # even the best sentence alone is too long: keep the source whole
                return ""
            break
    return _join(units, sorted(picked))


def _introduced(units: list[_Unit], ids: set[int], most: int = 3) -> set[int]:
    """``ids`` with what their lead-ins introduce: a kept sentence that ends in a colon ("To disable
    BDAT support globally:", "/etc/postfix/main.cf:", "# The logging alternative:") keeps the line
    after it, at most ``most`` in a row. Kept with its neighbours but cut before
    ``smtpd_discard_ehlo_keywords = chunking``, Postfix's lead-ins told the model where the answer was
    and not what it was, and it wrote "The main.cf setting that stops ... is [1]." A definition's term
    line is no lead-in (its description is scored for itself), nor is what follows a lead-in a table
    row or an interactive example, which are kept for their own score."""
    out = set(ids)
    for i in ids:
        j = i
        for _ in range(most):
            u = units[j]
            if u.kind != "sentence" or not u.text.endswith(":") or is_term(u.text) or j + 1 >= len(units):
                break
            nxt = units[j + 1]
            if nxt.kind != "sentence" or nxt.code or nxt.entry != u.entry:
                break
            j += 1
            out.add(j)
    return out


def _antecedents(units: list[_Unit], i: int, most: int = 3) -> set[int]:
    """The sentences before ``units[i]`` that its opening pronoun points back to ("It is the default
    protocol ..." needs "Protocol version 4 was added ..."): back to the first one that does not open
    with a pronoun, at most ``most``, within its line."""
    out: set[int] = set()
    j = i
    while (
        len(out) < most
        and units[j].kind == "sentence"
        and _ANAPHOR.match(units[j].text)
        and j > 0
        and units[j - 1].kind == "sentence"
        and units[j - 1].line == units[j].line
    ):
        j -= 1
        out.add(j)
    return out


def condense_for_prompt(
    sources: Sequence[Source], query: str, count_tokens: Callable[[str], int], parts: Sequence[str] = ()
) -> list[Source]:
    """:func:`condense` with the words and the process's MiniLM embedder (what the engine uses)."""
    from groundglass.answer.embeddings import get_embedder

    return condense(sources, query, count_tokens, embed=get_embedder().encode, parts=parts)
