"""A query against one index: BM25, vectors or both fused, the chunks that hold the question's
verbatim terms first, near-duplicates dropped and a few chunks per document at most. The retrievers
themselves (SQL and the matrix product) are :class:`~groundglass.answer.index.store.LocalIndex`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from groundglass.answer.types import Source
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.index.store import LocalIndex

MODES = ("hybrid", "bm25", "dense")

# Chunks scanned for a query's verbatim terms: enough for a term a manual uses on a few dozen pages.
LITERAL_SCAN_MAX = 400


def search(
    index: LocalIndex, query: str, k: int, mode: str = "hybrid", *, query_vector: np.ndarray | None = None
) -> list[Source]:
    """The ``k`` best chunks for ``query``: ``mode`` is hybrid (BM25 + vectors, fused), bm25 or dense.

    Scores are 0..1: hybrid = the mean of the BM25 and cosine scores, each min-max scaled over its
    candidates (1 = best for both; see :mod:`groundglass.answer.rank` for why); bm25 = relative
    to the best hit; dense = cosine similarity. Near-duplicates are dropped and at most
    ``retrieval.max_per_source`` chunks of one document are kept. ``query_vector``: the query's
    embedding when the caller has it already (saves encoding it again).
    """
    from groundglass.answer import rank

    if mode not in MODES:
        raise GroundglassError(f"unknown retrieval mode {mode!r}", f"use one of: {', '.join(MODES)}")
    if k <= 0 or not query.strip():
        return []
    r = index.settings.retrieval
    n = max(r.candidates, 4 * k)
    if mode == "bm25":
        hits = index.bm25(query, n)
        best = hits[0][1] if hits and hits[0][1] > 0 else 1.0
        scored = [(cid, s / best) for cid, s in hits]
    else:
        from groundglass.answer.embeddings import get_embedder

        qvec = query_vector if query_vector is not None else get_embedder().encode([query])[0]
        dense_hits = index.dense(qvec, n)
        if mode == "dense":
            scored = dense_hits
        else:
            scored = rank.minmax_fuse([dict(index.bm25(query, n)), dict(dense_hits)])
    if mode != "dense" and (verbatim := index.literal(query, LITERAL_SCAN_MAX, among={c for c, _ in scored})):
        # a chunk that holds the question's verbatim terms or names its table row comes before those
        # that hold none (as on the web path: pages.with_literal_terms); among them, by the rarity of
        # what it holds and its fused score together, each relative to the best. By rarity alone,
        # the examples that spell concurrent.futures.ThreadPoolExecutor(max_workers=4) took the
        # page's places from the best fused chunk, the section's "Default value of max_workers is
        # changed to ...", which calls the class ThreadPoolExecutor.
        fused = dict(scored)
        best = max(fused.values(), default=1.0)
        rarest = max(verbatim.values())
        ahead = sorted(verbatim, key=lambda c: -(verbatim[c] / rarest + fused.get(c, 0.0) / (best or 1.0)))
        scored = [(c, max(fused.get(c, 0.0), best)) for c in ahead] + [
            (c, sc) for c, sc in scored if c not in verbatim
        ]
    # Build sources for the best candidates only, a batch at a time, until k survive the filters.
    step = 2 * k + 10
    built: list[Source] = []
    kept: list[Source] = []
    for start in range(0, len(scored), step):
        built += index.sources(scored[start : start + step], query)
        kept = rank.diversify(rank.dedupe(built), r.max_per_source, query)
        if len(kept) >= k:
            break
    return kept[:k]
