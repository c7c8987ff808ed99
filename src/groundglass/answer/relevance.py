"""The relevance gate: which ranked sources are close enough to the question to show the model.

The fused retrieval score ranks candidates but says nothing absolute (the best hit of any query scores
near 1.0), so the engine also measures how close each candidate is to the question (MiniLM cosine,
from the index's stored vectors when it has them). Candidates below ``retrieval.min_relevance``, or
more than ``retrieval.relevance_margin`` below the best one, are dropped; when none is left, the
engine declines without calling the model: a small model handed unrelated text tends to invent an
answer from it. The floor was chosen on the FanOutQA sub-questions over the Wikipedia summaries: it
keeps their gold passages while off-topic questions find nothing above it; the margin shortens the
prompt without losing gold passages. A passage that defines a term the question names (its term
line) is kept above the floor whatever the margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from groundglass.answer import querytext, rank
from groundglass.answer.types import Source
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import Settings

log = get_logger(__name__)


def relevant(
    index: LocalIndex | None,
    settings: Settings,
    query: str,
    sources: list[Source],
    *,
    margin: bool = True,
    parts: Sequence[str] = (),
) -> list[Source]:
    """Sources close enough to the main query (the question, or what an image question asks
    about): MiniLM cosine >= ``min_relevance`` and (with ``margin``) within ``relevance_margin`` of
    the best one. A research step keeps no margin: its sub-query is narrow, and a page it needs can
    score well below the best match (the FanOutQA evaluation lost needed pages to the margin).

    ``parts``: the sub-queries a question of several parts was split into. A source is then judged
    against each of them as well, and kept when it is close enough to one (within the margin of that
    one's best): the page that answers the second part is further from the whole question than the
    page that answers the first (the docs eval lost timeit's page to sqlite3's that way). The two best
    sources of each part come first, in turn (an entry that defines a term the part names before
    others), so that cutting to ``top_k`` keeps them for every part."""
    if not sources:
        return []
    queries = [query, *(p for p in parts if p != query)]
    scores = similarity(index, queries, sources)  # one row per query
    r = settings.retrieval
    floors = np.full(len(queries), r.min_relevance)
    if margin:
        floors = np.maximum(floors, scores.max(axis=1) - r.relevance_margin)
    log.debug("relevance", scores=np.round(scores, 3).tolist(), floors=np.round(floors, 3).tolist())
    close = scores >= floors[:, None]
    # the entry that defines a term the query names is about it, however its cosine compares with a
    # short passage that only repeats the name (a manual's index: "max_connections configuration
    # parameter"); the margin dropped PostgreSQL's max_connections entry for that
    verbatim = [querytext.Verbatim.of(q) for q in queries]
    defines = np.array([[bool(v.definitions(s.text)) for s in sources] for v in verbatim])
    close |= defines & (scores >= r.min_relevance)
    kept = [i for i in range(len(sources)) if close[:, i].any()]
    # after the best for the whole question, each part's best two, in turn: the whole question's
    # best is often a passage that matches both parts' words and answers neither, and the rest in
    # its order lost the entry that answers the second part ("... and what is the default value
    # of work_mem?")
    texts = [f"{s.title}\n{s.text}" for s in sources]
    best = [
        _best_of(close[q], _fused(texts, queries[q], scores[q]), defines[q], PART_LEAD)
        for q in range(1, len(queries))
    ]
    lead = [b[place] for place in range(PART_LEAD) for b in best if place < len(b)]
    order = list(dict.fromkeys([i for i in kept if close[0, i]][:1] + lead + kept))
    return [sources[i] for i in order]


PART_LEAD = 2  # sources of each part of a question put first, before the rest in their order


def _fused(texts: Sequence[str], query: str, cosine: np.ndarray) -> dict[int, float]:
    """BM25 of ``query`` over ``texts`` and the cosines, min-max fused as the searches rank: MiniLM
    alone puts "Consistent use of Serializable transactions ..." above "Read Committed is the default
    isolation level" for "What is the default isolation level". When the query asks a default, a
    text that states one with a value ranks higher (:data:`STATED_DEFAULT`): the index ranked
    default_transaction_isolation's "This parameter controls the default isolation level ... The
    default is "read committed"." fifth for that question, below passages on the Serializable level
    and on transaction_isolation."""
    from groundglass.answer.grounding.defaults import asks_default, states_default
    from groundglass.answer.search.pages import bm25_scores

    fused = dict(rank.minmax_fuse([bm25_scores(texts, query), {i: float(c) for i, c in enumerate(cosine)}]))
    if asks_default(query):
        for i, text in enumerate(texts):
            if i in fused and states_default(text):
                fused[i] += STATED_DEFAULT
    return fused


# Added to the fused score (0-1) of a text that states a default, when the query asks one: enough to
# lift a close second above the best (default_transaction_isolation's entry, 0.968 against 0.989),
# not a text about another thing: with a whole point, git instaweb's "--port ... (Default: 1234)"
# (0.44) took the first of "On which TCP port does git daemon listen by default"'s places from git
# daemon's "normally listens on port ... 9418" (0.97).
STATED_DEFAULT = 0.25


def _best_of(close: np.ndarray, fused: dict[int, float], defines: np.ndarray, n: int) -> list[int]:
    """The ``n`` best close sources for one query: those that define a term it names first, in the
    search's order (the entry's first chunk, which the search put first, before one that carries its
    term line into the rest of its description), then the others by ``fused`` score."""
    ids = [i for i in range(len(close)) if close[i]]
    return sorted(ids, key=lambda i: (0, i) if defines[i] else (1, -fused.get(i, 0.0)))[:n]


def similarity(index: LocalIndex | None, queries: list[str], sources: list[Source]) -> np.ndarray:
    """Cosine of each query (rows) with each source (columns): the index's stored chunk vectors when
    it has them all (no re-encoding), else fresh MiniLM embeddings of title + text."""
    from groundglass.answer.embeddings import get_embedder

    embedder = get_embedder()
    question = embedder.encode(queries).T
    if index is not None and all(s.chunk_id.isdigit() for s in sources):
        ids, matrix = index.vectors()
        wanted = np.array([int(s.chunk_id) for s in sources], dtype=np.int64)
        rows = np.searchsorted(ids, wanted)  # ids are sorted
        if (rows < len(ids)).all() and np.array_equal(ids[rows], wanted):
            return np.asarray((matrix[rows] @ question).T)
    return np.asarray((embedder.encode([f"{s.title}\n{s.text}" for s in sources]) @ question).T)
