"""The answer's sources: what to search, the searches, the research steps, and the ranking.

The engine asks this module for the sources of one job: the queries (the question and its parts,
or queries written from what the images show), one search per query on the index or the web (the
rankings fused), or a research plan's steps for the higher reasoning efforts. The candidates are
then deduplicated, spread over documents, put through the relevance gate and fitted to the prompt's
token budget. Nothing here calls the answering model for the answer itself.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING

from groundglass.answer import condense, conversation, grounding, planner, prompt, rank, relevance
from groundglass.answer.events import Event, StepDone
from groundglass.answer.job import Job
from groundglass.answer.research import Research, research
from groundglass.answer.retrieve import Found, WebSearch, merge, search_index_each, source_filter
from groundglass.answer.trace import Trace
from groundglass.answer.types import Source
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.conversation import Coverage
    from groundglass.answer.vision import VisualFacts
    from groundglass.config import Settings

SOURCE_OVERHEAD_TOKENS = 16  # "[n] Title (date)" line and separators, per source


def queries_for(job: Job, settings: Settings, query: str, facts: list[VisualFacts]) -> list[str]:
    """What to search: the query, or, with images, queries written from what they show."""
    if job.search is None:
        return []
    if not facts:
        return [query, *planner.part_queries(query)]
    from groundglass.answer.vision import image_queries

    v = settings.vision
    question = job.request.question.strip()  # "" when only images were given
    return image_queries(facts, question, max_queries=v.max_queries, label_min_score=v.label_min_score) or [
        query
    ]


def coverage(job: Job, query: str) -> Coverage | None:
    """How far the earlier turns' sources answer ``query`` (None without earlier sources)."""
    prior = job.request.prior_sources
    if not prior or job.search is None:
        return None
    return conversation.covered_by(prior, query)


def research_steps(
    job: Job, settings: Settings, query: str, trace: Trace
) -> Generator[Event, None, Research]:
    """Plan, search in waves and rounds; yields the steps (and their trace lines), returns Research."""

    def search_each_query(queries: list[str]) -> list[list[Source]]:
        return [f.sources for f in search_each(job, settings, queries)]

    def keep(q: str, candidates: list[Source], k: int) -> list[Source]:
        ranked = rank.diversify(rank.dedupe(candidates), settings.retrieval.max_per_source, q)
        return relevance.relevant(job.index, settings, q, ranked[: k * 2], margin=False)[:k]

    history = job.history
    run = research(job.llm, query, job.effort, search_each_query, keep, history=history)
    while True:
        try:
            step = next(run)
        except StopIteration as done:
            result: Research = done.value
            break
        yield StepDone(step.as_dict())
        yield from trace.step(step)
    job.reasoning_tokens += result.reasoning_tokens
    return result


def search(job: Job, settings: Settings, queries: list[str]) -> Found:
    """Every query searched (web: in parallel), the rankings fused."""
    if job.search is None:
        return Found(sources=[], queries=[])
    return merge(search_each(job, settings, queries))


def search_each(job: Job, settings: Settings, queries: list[str]) -> list[Found]:
    """One Found per query from the index or the web; an error when no web provider answers at all."""
    filters = job.request.search_filters
    if job.search == "index" and job.index is not None:
        k = (job.top_k or settings.retrieval.top_k) * 2
        keep = source_filter(filters, settings.search.undated)
        return search_index_each(job.index, queries, k=k, keep=keep)
    assert job.web is not None
    size = job.request.search_context_size
    early, job.early_search = job.early_search, None
    if early is not None and early.queries != queries:
        early.cancel()
        early = None
    each = (early or WebSearch(job.web, queries, filters, size, top_k=job.top_k)).each()
    reports = [r for f in each for r in f.reports]
    if not any(f.sources for f in each) and all(r.provider is None for r in reports):
        error = merge(each).error
        raise GroundglassError(
            error or "no search provider answered",
            "configure a search provider in the [search] section of the config "
            "(see the README's web search section)",
            code="search_failed",
        )
    return each


def rank_sources(
    job: Job, settings: Settings, found: Found, image_notes: str, query: str, *, gate: bool = True
) -> list[Source]:
    """Dedupe, spread over documents, keep the relevant best ``top_k``, fit the token budget, one
    numbered source per page.
    ``gate=False`` (sources of a plan's steps, each already judged against its own sub-query) keeps
    them all, in order, within the budget."""
    if not found.sources:
        return []
    r = settings.retrieval
    top_k = job.top_k or found.top_k or r.top_k
    whole = bool(found.queries) and query == job.question
    main = found.queries[0] if whole else query
    parts = found.queries[1:] if whole else ()
    # a page may answer each part of a question in another chunk: its places are per part
    sources = rank.diversify(rank.dedupe(found.sources), r.max_per_source * max(1, len(parts)), query)
    if gate:
        # in the index, each part's own search adds candidates: fused with the others', a part's fifth
        # hit came fourteenth ("The default is "read committed"" for "What is the default isolation
        # level"). Web pages are ranked per page already, and there the wider pool let other pages'
        # chunks take a part's two places: "Read Committed is the default isolation level" and FTS5's
        # "The unicode61 tokenizer ... This is the default." left the prompt (docs eval, both manuals)
        pool = top_k * (max(2, len(parts) + 1) if job.search == "index" else 2)
        sources = relevance.relevant(job.index, settings, main, sources[:pool], parts=parts)[:top_k]
        sources = condense.condense_for_prompt(sources, main, job.llm.count_tokens, parts)
    history = list(job.history)
    fixed = prompt.fixed_prompt_tokens(
        job.question,
        job.llm.count_tokens,
        image_notes,
        history,
        job.effort.answer_style,
        job.instructions,
    )
    room = job.llm.context_length - job.max_tokens - fixed
    wanted = found.context_tokens or r.context_tokens
    if job.effort.plans:
        wanted = max(wanted, job.effort.context_tokens)
    budget = min(wanted, room)
    sources = rank.fit_budget(sources, budget, job.llm.count_tokens, overhead_tokens=SOURCE_OVERHEAD_TOKENS)
    return _about(job, rank.merge_pages(sources))


_WORD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def _about(job: Job, sources: list[Source]) -> list[Source]:
    """The index's sources, each told which of the question's one-word names (``PostgreSQL``) the
    whole index is about. A manual's chunk rarely repeats the product's name ("The TCP port the
    server listens on"), and the answer's check would otherwise refuse "The PostgreSQL server
    listens on port 5432" for naming what no cited source names. A name that only some pages hold
    (a setting, a class) is the claim's subject, and a cited source must still name it."""
    if job.search != "index" or job.index is None or not sources:
        return sources
    names = [v.text for v in grounding.values_of(job.question) if v.kind == "identifier"]
    names = [n for n in dict.fromkeys(names) if _WORD_NAME.fullmatch(n)]
    common = job.index.common_names(names) if names else []
    if not common:
        return sources
    about = " ".join(common)
    return [replace(s, about=about) if s.source == "index" else s for s in sources]
