"""Split documents into passages of about ``chunk_tokens`` tokens on sentence and paragraph boundaries.

Token counts use the embedding model's own tokenizer (MiniLM word pieces), so a chunk plus its
title/heading prefix stays inside what the embedder reads (256 word pieces).

Packing, per document:
1. consecutive small sections are merged into one chunk while they fit (a later section's heading
   stays in the text as its own line), so a page of short sections does not become a pile of
   two-line chunks;
2. a longer section is packed sentence by sentence; a chunk ends at a paragraph end when it is at
   least half full and the next paragraph would not fit in it but fits in a chunk of its own, else
   at a sentence end, and then the next chunk starts with the last ~``overlap`` tokens of whole
   sentences of the previous one;
3. a single sentence longer than the budget is cut at word boundaries (the only mid-sentence cut);
4. a chunk that starts inside the description of a definition list's term starts with the term's line
   (:mod:`groundglass.answer.definitions`: without it, its sentences read as facts about whatever
   comes before them; counted in its budget), cut to half a budget when longer; a term line that
   would end a chunk goes to the next one instead, with its description (unless it has to be cut).

Sentences come from :func:`groundglass.answer.sentences.split_sentences`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from groundglass.answer.definitions import is_term
from groundglass.answer.index.documents import Chunk, Document, Section
from groundglass.answer.sentences import split_sentences

CountBatch = Callable[[Sequence[str]], list[int]]


_LIST_ITEM = re.compile(r"(?:[-*•]|\d{1,2}[.)])\s")


def split_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


@dataclass(eq=False)
class _Unit:
    text: str
    tokens: int
    para: int  # paragraph number within the section
    term: _Unit | None = None  # the definition term whose description this is part of


def _split_long(sentence: str, tokens: int, budget: int) -> list[tuple[str, int]]:
    """Cut one over-long sentence at word boundaries into pieces of about ``budget`` tokens."""
    words = sentence.split()
    pieces = max(2, -(-tokens // budget))
    per = max(1, -(-len(words) // pieces))
    parts = [" ".join(words[i : i + per]) for i in range(0, len(words), per)]
    return [(p, max(1, round(tokens * len(p) / max(1, len(sentence))))) for p in parts]


def _units(text: str, budget: int, count: CountBatch) -> list[_Unit]:
    paras = split_paragraphs(text)
    sentences: list[tuple[str, int]] = []
    for pi, para in enumerate(paras):
        sentences.extend((s, pi) for s in split_sentences(para))
    counts = count([s for s, _ in sentences]) if sentences else []
    units: list[_Unit] = []
    term: _Unit | None = None  # a term line just read: the next item describes it
    item_term: _Unit | None = None  # the term of the item being read
    for (s, pi), n in zip(sentences, counts, strict=True):
        if units and pi != units[-1].para:
            term = item_term = None
        if is_term(s):
            unit = _Unit(s, n, pi)
            term, item_term = unit, None
            units.append(unit)
            continue
        if _LIST_ITEM.match(s):
            item_term, term = term, None
        if n > budget:
            units.extend(_Unit(p, pn, pi, item_term) for p, pn in _split_long(s, n, budget))
        else:
            units.append(_Unit(s, n, pi, item_term))
    return units


def _join(units: Sequence[_Unit]) -> str:
    out = ""
    for i, u in enumerate(units):
        if i == 0:
            out = u.text
        elif u.para != units[i - 1].para:
            out += "\n\n" + u.text
        elif u.text.startswith("|") or _LIST_ITEM.match(u.text):
            # a table row (see html_tables.table_row_groups) or a list item keeps its own line: joined into
            # the sentence before, "... in Python 3.0-3.7. - Protocol version 4 was added ..." reads as one
            # claim, and a pronoun in the item ("It is the default protocol") loses its subject
            out += "\n" + u.text
        else:
            out += " " + u.text
    return out


def _carried(units: Sequence[_Unit], budget: int) -> _Unit | None:
    """The term line a chunk of ``units`` starts with though it is not among them: the term of the
    description its first unit is part of, cut to half a budget (a long signature keeps its start)."""
    term = units[0].term if units else None
    if term is None or term in units:
        return None
    if term.tokens <= budget // 2:
        return term
    cut, tokens = _split_long(term.text, term.tokens, budget // 2)[0]
    return _Unit(f"{cut} …):" if "(" in cut else f"{cut} …:", tokens + 2, term.para)


def _chunk(units: list[_Unit], tokens: int, budget: int, last: bool) -> tuple[str, int]:
    """(text, tokens) of one chunk of ``units`` (``tokens`` counts its carried term): the carried term's
    line first, and, unless it is the ``last`` chunk, without term lines at its end, which the next
    chunk starts with (in its overlap, or carried)."""
    while not last and len(units) > 1 and _ends_with_term(units, budget):
        tokens -= units[-1].tokens
        units = units[:-1]
    term = _carried(units, budget)
    return (term.text + "\n" if term else "") + _join(units), tokens


def _ends_with_term(units: list[_Unit], budget: int) -> bool:
    last = units[-1]
    return last.term is None and last.tokens <= budget // 2 and is_term(last.text)


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[tuple[str, int]]:
    """Pack sentence units into (text, tokens) chunks; see the module docstring."""
    para_tokens: dict[int, int] = {}
    for u in units:
        para_tokens[u.para] = para_tokens.get(u.para, 0) + u.tokens
    chunks: list[tuple[str, int]] = []
    cur: list[_Unit] = []
    cur_tokens = 0
    fresh = False  # cur holds something not yet emitted
    for u in units:
        new_para = bool(cur) and u.para != cur[-1].para
        # start a paragraph that fits in one chunk in a fresh chunk, if the current one is half full
        para_break = (
            new_para
            and cur_tokens >= budget // 2
            and para_tokens[u.para] <= budget
            and cur_tokens + para_tokens[u.para] > budget
        )
        if cur and (cur_tokens + u.tokens > budget or para_break):
            if fresh:
                chunks.append(_chunk(cur, cur_tokens, budget, last=False))
            tail: list[_Unit] = []
            if not para_break and overlap > 0:
                t = 0
                for prev in reversed(cur):
                    if t + prev.tokens > overlap or t + prev.tokens + u.tokens > budget:
                        break
                    tail.insert(0, prev)
                    t += prev.tokens
            term = _carried([*tail, u], budget)
            if term is not None and sum(x.tokens for x in tail) + term.tokens + u.tokens > budget:
                tail = []  # the overlap gives way to the term, which says what the text is about
                term = _carried([u], budget)
            cur, cur_tokens, fresh = tail, sum(x.tokens for x in tail) + (term.tokens if term else 0), False
        cur.append(u)
        cur_tokens += u.tokens
        fresh = True
    if cur and fresh:
        chunks.append(_chunk(cur, cur_tokens, budget, last=True))
    return chunks


def _prefix(title: str, heading: str) -> str:
    if heading and heading.strip().lower() != title.strip().lower():
        return f"{title}\n{heading}\n"
    return f"{title}\n"


def chunk_document(doc: Document, chunk_tokens: int, overlap: int, count: CountBatch) -> list[Chunk]:
    """Chunks of ``doc``, each carrying its document title and nearest heading."""
    budget = max(16, chunk_tokens)
    overlap = max(0, min(overlap, budget // 2))
    sections = [s for s in doc.sections if s.text.strip() or s.heading.strip()]
    sec_tokens = count([s.text for s in sections]) if sections else []
    head_tokens = count([s.heading for s in sections]) if sections else []

    # (heading of the chunk, body, tokens)
    pieces: list[tuple[str, str, int]] = []
    block: list[Section] = []
    block_tokens = 0

    def flush() -> None:
        nonlocal block, block_tokens
        if block:
            parts = [block[0].text.strip()]
            for s in block[1:]:
                parts.append(f"{s.heading}\n{s.text.strip()}" if s.heading else s.text.strip())
            body = "\n\n".join(p for p in parts if p)
            if body:
                pieces.append((block[0].heading, body, block_tokens))
        block, block_tokens = [], 0

    for s, n, hn in zip(sections, sec_tokens, head_tokens, strict=True):
        if n > budget:
            flush()
            for body, t in _pack(_units(s.text, budget, count), budget, overlap):
                pieces.append((s.heading, body, t))
            continue
        extra = n + (hn if block else 0)
        if block and block_tokens + extra > budget:
            flush()
            extra = n
        block.append(s)
        block_tokens += extra
    flush()

    chunks: list[Chunk] = []
    for heading, body, t in pieces:
        prefix = _prefix(doc.title, heading)
        chunks.append(
            Chunk(ord=len(chunks), heading=heading, body=body, indexed_text=prefix + body, tokens=t)
        )
    return chunks
