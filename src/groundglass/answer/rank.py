"""Ranking as plain functions: fuse rankings, drop near-duplicates, spread over sources, fit a budget.

Every function takes and returns ``Source`` lists ordered best first; none of them touches the index,
the network or a model, so the web search path and the local index share them.

- :func:`minmax_fuse` — normalised score fusion (each retriever's scores min-max scaled over its
  candidates, then averaged): what hybrid search uses. On the 10k-summary corpus it beats reciprocal
  rank fusion on FanOutQA sub-questions and on keyword queries (``bench/bench_index.py``, whose
  docstring has the figures); weighting towards the vectors gained little on the first and lost a
  lot on the second, so the weights stay equal.
- :func:`rrf_fuse` — reciprocal rank fusion (Cormack et al. 2009), kept for comparison and for
  callers that only have rankings.
- :func:`dedupe` — near-duplicate removal by Jaccard similarity of word shingles (the same passage
  mirrored on two sites, or overlapping chunks of one page).
- :func:`diversify` — at most ``max_per_source`` chunks from one document.
- :func:`fit_budget` — keep the best sources that fit a token budget; the last one is trimmed at a
  sentence boundary, never mid-sentence, or dropped.
- :func:`merge_pages` — one numbered source per page: a page's chunks joined under one title.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import TypeVar

from groundglass.answer import querytext
from groundglass.answer.definitions import is_term
from groundglass.answer.sentences import split_sentences
from groundglass.answer.types import Source

K = TypeVar("K", bound=Hashable)

RRF_K = 60  # the constant from the original paper; robust across collections


def rrf_fuse(
    rankings: Sequence[Sequence[K]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[K, float]]:
    """Fuse rankings (each a list of ids, best first) into one, scored 0..1, best first.

    The fused score of an id is ``sum(w / (k + rank))`` over the rankings that contain it, divided by
    the best score possible (first in every ranking), so an id ranked first everywhere scores 1.0.
    Ties keep the order in which ids first appear (the first ranking wins).
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[K, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
    best = sum(w / (k + 1) for w in weights) or 1.0
    order = sorted(scores.items(), key=lambda kv: -kv[1])  # stable: first appearance breaks ties
    return [(key, min(1.0, s / best)) for key, s in order]


def minmax_fuse(
    scored: Sequence[dict[K, float]], weights: Sequence[float] | None = None
) -> list[tuple[K, float]]:
    """Normalised score fusion: min-max scale each retriever's scores to 0..1, then a weighted mean.

    An id missing from a retriever counts 0 there; a retriever whose candidates all score the same
    gives each of them 1. The result is best first, scores 0..1 (1 = best for every retriever).
    """
    weights = list(weights) if weights is not None else [1.0] * len(scored)
    total = sum(weights) or 1.0
    fused: dict[K, float] = {}
    for scores, w in zip(scored, weights, strict=True):
        if not scores:
            continue
        lo, hi = min(scores.values()), max(scores.values())
        span = hi - lo
        for key, s in scores.items():
            norm = (s - lo) / span if span > 0 else 1.0
            fused[key] = fused.get(key, 0.0) + w * norm / total
    return sorted(fused.items(), key=lambda kv: -kv[1])


_WORD = re.compile(r"\w+", re.UNICODE)


def _shingles(text: str, n: int = 3) -> frozenset[int]:
    """Hashes of the word n-grams of ``text`` (ints compare much faster than tuples of words)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset({hash(tuple(words))}) if words else frozenset()
    return frozenset(hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1))


def _similar(a: frozenset[int], b: frozenset[int], threshold: float) -> bool:
    """Jaccard(a, b) >= threshold; the size ratio bounds Jaccard, which skips most pairs cheaply."""
    if not a or not b:
        return False
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if len(small) < threshold * len(large):
        return False
    inter = len(small & large)
    return inter >= threshold * (len(a) + len(b) - inter)


def dedupe(sources: Sequence[Source], threshold: float = 0.75) -> list[Source]:
    """Drop sources whose text is a near-duplicate (word 3-shingle Jaccard >= threshold) of a better one.

    Exact duplicates and small edits (mirrors, boilerplate variations) go; overlapping neighbour chunks
    of one document share only their overlap and stay.
    """
    kept: list[Source] = []
    kept_shingles: list[frozenset] = []
    for src in sources:
        sh = _shingles(src.text)
        if any(_similar(sh, other, threshold) for other in kept_shingles):
            continue
        kept.append(src)
        kept_shingles.append(sh)
    return kept


# Chunks of one definition entry kept (apart from its page's): most entries of a manual's settings and
# functions fit in three (PostgreSQL's shared_buffers and work_mem do: the default is in the first of
# one, the last of the other).
ENTRY_CHUNKS = 3


def diversify(sources: Sequence[Source], max_per_source: int, query: str = "") -> list[Source]:
    """Keep at most ``max_per_source`` chunks of any one document (by URL), in order. The chunks of
    the definition of a term ``query`` names count apart from the rest of their page, up to
    ``ENTRY_CHUNKS``: an entry of a manual's settings page spans several chunks, and they took the
    page's places from one another."""
    if max_per_source <= 0:
        return list(sources)
    verbatim = querytext.Verbatim.of(query) if query else None
    seen: dict[tuple[str, str], int] = {}
    out: list[Source] = []
    for src in sources:
        entry = min(verbatim.definitions(src.text), default="") if verbatim else ""
        key = (src.url or src.doc_id, entry)
        if seen.get(key, 0) >= (max(ENTRY_CHUNKS, max_per_source) if entry else max_per_source):
            continue
        seen[key] = seen.get(key, 0) + 1
        out.append(src)
    return out


TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")  # a Markdown table row: "| a | b |"


def _pieces(text: str) -> list[tuple[str, str]]:
    """(separator before it, piece): the sentences of each line, and each table row whole."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        parts = [line] if TABLE_ROW.match(line) else split_sentences(line)
        out.extend(("\n" if j == 0 else " ", part) for j, part in enumerate(parts))
    return out


def trim_to_sentences(text: str, budget_tokens: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of whole sentences of ``text`` that fits ``budget_tokens`` ('' if none fits).

    Line breaks stay (a table keeps its rows on their own lines) and a table row is never cut."""
    if budget_tokens <= 0:
        return ""
    kept = ""
    for sep, piece in _pieces(text):
        candidate = f"{kept}{sep}{piece}" if kept else piece
        if count_tokens(candidate) > budget_tokens:
            break
        kept = candidate
    return kept


def fit_budget(
    sources: Sequence[Source],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    *,
    overhead_tokens: int = 0,
    min_tokens: int = 12,
) -> list[Source]:
    """Keep the most relevant sources (in order) whose texts fit ``budget_tokens`` together.

    ``overhead_tokens`` is what each source costs besides its text (title line, marker). The first
    source that does not fit is trimmed at a sentence boundary to the remaining budget, or dropped when
    fewer than ``min_tokens`` of whole sentences fit; the ones after it are dropped.
    """
    out: list[Source] = []
    left = budget_tokens
    for src in sources:
        room = left - overhead_tokens
        if room <= 0:
            break
        cost = count_tokens(src.text)
        if cost <= room:
            out.append(src)
            left -= cost + overhead_tokens
            continue
        trimmed = trim_to_sentences(src.text, room, count_tokens) if room >= min_tokens else ""
        if trimmed and count_tokens(trimmed) >= min_tokens:
            out.append(replace(src, text=trimmed))
        break
    return out


# a line this long that the page's text shows already is said once: the same signature or sentence
# (json.dumps' 200-character signature came three times in one source, once per chunk of its entry);
# a shorter one ("Default: None") may be another entry's own
_SAID_ONCE = 40


def _unshown(lines: list[str], shown: set[str], current: str) -> str:
    """``lines`` without the long ones already ``shown``, but for a term line that heads a line not
    shown: without it, the new description would read as the entry's above it. That is unless it is
    the term the text ends under (``current`` before ``lines``), whose description goes on: three
    chunks of ThreadPoolExecutor's entry showed its 35-token signature three times in a row."""
    said = [len(ln.strip()) >= _SAID_ONCE and ln.strip() in shown for ln in lines]
    kept = []
    for i, ln in enumerate(lines):
        again = is_term(ln) and ln.strip() != current and i + 1 < len(lines) and not said[i + 1]
        if not said[i] or (again and lines[i + 1].strip()):
            kept.append(ln)
            if is_term(ln):
                current = ln.strip()
    return "\n".join(kept).strip()


def _first_line(text: str) -> str:
    return text.lstrip().split("\n", 1)[0].strip()


def merge_pages(sources: Sequence[Source]) -> list[Source]:
    """One source per page (by URL), at the place of its best chunk, its chunks' texts joined in rank
    order with a blank line between them; a chunk that opens with a line the page's text has already
    (the heading or signature line it shares with the chunk before) does not repeat it, nor does it
    repeat a longer line (a signature, a sentence) that the page's text shows already. A term's line
    (a signature) is said again only where another entry's text came between.

    Two chunks of one page were two numbered sources with the same title and often the same heading
    (a function's signature line above each part of its description): in the Python manual's eval,
    231 of 545 sources repeated a page given already. Each repeat cost the prompt its title line, the
    slowest part of an answer on a CPU being the prompt's pre-fill, and the answer got two markers
    and two ``citations`` for one page."""
    first: dict[str, Source] = {}
    texts: dict[str, list[str]] = {}
    for n, src in enumerate(sources):
        key = src.url or src.doc_id or f"#{n}"
        text = src.text.strip()
        if key not in first:
            first[key], texts[key] = src, [text]
            continue
        shown = {line.strip() for t in texts[key] for line in t.splitlines()}
        terms = [ln.strip() for t in texts[key] for ln in t.splitlines() if is_term(ln)]
        current = terms[-1] if terms else ""
        opening = _first_line(text)
        if "\n" in text and opening in shown and (not is_term(opening) or opening == current):
            text = text.split("\n", 1)[1].strip()
        text = _unshown(text.splitlines(), shown, current)
        if text:
            texts[key].append(text)
    return [replace(s, text="\n\n".join(texts[k])) if len(texts[k]) > 1 else s for k, s in first.items()]
