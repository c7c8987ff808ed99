"""The relevance gate: which ranked sources are close enough to the question to show the model.

The fused retrieval score ranks candidates but says nothing absolute (the best hit of any query scores
near 1.0), so the engine also measures how close each candidate is to the question (MiniLM cosine,
from the index's stored vectors when it has them). Candidates below ``retrieval.min_relevance``, or
more than ``retrieval.relevance_margin`` below the best one, are dropped; when none is left, the
engine declines without calling the model: a small model handed unrelated text tends to invent an
answer from it. The floor was chosen on the FanOutQA sub-questions over the Wikipedia summaries: it
keeps their gold passages while off-topic questions find nothing above it; the margin shortens the
prompt without losing gold passages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from groundglass.answer.job import Job
from groundglass.answer.types import Source
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.config import Settings

log = get_logger(__name__)


def relevant(
    job: Job, settings: Settings, query: str, sources: list[Source], *, margin: bool = True
) -> list[Source]:
    """Sources close enough to the main query (the question, or what an image question asks
    about): MiniLM cosine >= ``min_relevance`` and (with ``margin``) within ``relevance_margin`` of
    the best one. A research step keeps no margin: its sub-query is narrow, and a page it needs can
    score well below the best match (the FanOutQA evaluation lost needed pages to the margin)."""
    if not sources:
        return []
    scores = similarity(job, query, sources)
    r = settings.retrieval
    floor = r.min_relevance
    if margin:
        floor = max(floor, float(scores.max()) - r.relevance_margin)
    log.debug("relevance", scores=[round(float(x), 3) for x in scores], floor=floor)
    return [s for s, sim in zip(sources, scores, strict=True) if sim >= floor]


def similarity(job: Job, query: str, sources: list[Source]) -> np.ndarray:
    """Cosine of the query with each source: the index's stored chunk vectors when it has them
    all (no re-encoding), else fresh MiniLM embeddings of title + text."""
    from groundglass.answer.embeddings import get_embedder

    embedder = get_embedder()
    question = embedder.encode([query])[0]
    if job.index is not None and all(s.chunk_id.isdigit() for s in sources):
        ids, matrix = job.index.vectors()
        wanted = np.array([int(s.chunk_id) for s in sources], dtype=np.int64)
        rows = np.searchsorted(ids, wanted)  # ids are sorted
        if (rows < len(ids)).all() and np.array_equal(ids[rows], wanted):
            return matrix[rows] @ question
    return embedder.encode([f"{s.title}\n{s.text}" for s in sources]) @ question
