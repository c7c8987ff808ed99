"""The answer engine: one question in, a stream of events out.

    retrieve -> rank -> (decline if nothing relevant) -> prompt -> generate -> cite -> Done

``Engine(settings).stream(request)`` checks the request and loads what it needs *before* it returns
(so a bad question, model spec or index name raises :class:`~groundglass.errors.GroundglassError`
at the call, where the CLI and the server turn it into a clean error), then yields
``SourcesFound`` -> ``Token``... -> ``Done``; a failure after that point arrives as one
``ErrorEvent``. ``Engine.answer(request)`` drains the same pipeline and returns the ``Answer``.

Relevance gate: the fused retrieval score ranks candidates but says nothing absolute (the best hit
of any query scores near 1.0), so the engine also measures how close each candidate is to the
question (MiniLM cosine, from the index's stored vectors). Candidates below
``retrieval.min_relevance`` (0.3), or more than ``retrieval.relevance_margin`` (0.2) below the best
one, are dropped; when none is left, the engine declines without calling the model: a small model
handed unrelated text tends to invent an answer from it. Measured on the 10k Wikipedia summaries
with the 558 FanOutQA dev sub-questions whose page is in the corpus: the 0.3 floor declines none
of them and drops the gold passage for 1 (0.2%), while it declines 8 of 18 off-topic questions
(VPN passwords, CSS, driver's licences...) outright; the margin cuts the sources given to the model
from 5.8 to 4.5 on average (a shorter prefill) with the gold passage kept as often as before.

The engine holds no per-request state: models and indexes are loaded on first use and cached, so
one Engine serves concurrent requests (the server) as well as one-off questions (the CLI).
Nothing here knows about the terminal or HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from groundglass.answer import cite, prompt, rank
from groundglass.answer.events import Done, ErrorEvent, Event, SourcesFound, Token
from groundglass.answer.llm.base import LLM, ChatMessage, Completion
from groundglass.answer.types import Answer, AskRequest, SentenceSupport, Source, Usage
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import Settings

log = get_logger(__name__)

SOURCE_OVERHEAD_TOKENS = 16  # "[n] Title (date)" line and separators, per source
MIN_ANSWER_TOKENS = 32


@dataclass
class _Job:
    """One checked request with what it runs on."""

    request: AskRequest
    question: str
    llm: LLM
    index: LocalIndex | None  # None when search is disabled
    max_tokens: int
    temperature: float
    top_k: int
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)

    def lap(self, name: str) -> None:
        self.timings[name] = round(time.perf_counter() - self.started, 4)


class Engine:
    """Grounded answers over a local index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._llms: dict[str, LLM] = {}
        self._indexes: dict[str, LocalIndex] = {}

    # --- the public face ---------------------------------------------------------------------------

    def stream(self, request: AskRequest) -> Iterator[Event]:
        """Events for ``request``; raises GroundglassError at once when the request cannot run."""
        job = self._prepare(request)
        return self._guarded(job)

    def answer(self, request: AskRequest) -> Answer:
        """The finished answer for ``request`` (raises GroundglassError on failure)."""
        for event in self._run(self._prepare(request)):
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("the pipeline ended without a Done event")

    def llm(self, spec: str | None = None) -> LLM:
        """The model for ``spec`` (settings.llm.model when None), loaded once."""
        from groundglass.answer.llm.load import load_llm

        key = spec if spec is not None else self.settings.llm.model
        with self._lock:
            if key not in self._llms:
                self._llms[key] = load_llm(key, self.settings)
            return self._llms[key]

    def index(self, name: str | None = None) -> LocalIndex:
        """The local index ``name`` (settings.retrieval.index when None), opened once."""
        from groundglass.answer.index.store import LocalIndex

        key = name or self.settings.retrieval.index
        with self._lock:
            if key not in self._indexes:
                self._indexes[key] = LocalIndex.open(self.settings, key)
            return self._indexes[key]

    # --- the pipeline, top to bottom ---------------------------------------------------------------

    def _prepare(self, request: AskRequest) -> _Job:
        question = request.question.strip()
        if not question:
            raise GroundglassError("the question is empty",
                                   'ask something, e.g. groundglass ask "Who was Ada Lovelace?"',
                                   param="messages")
        s = self.settings
        max_tokens = request.max_tokens if request.max_tokens is not None else s.llm.max_tokens
        top_k = request.top_k if request.top_k is not None else s.retrieval.top_k
        if max_tokens < 1:
            raise GroundglassError(f"max_tokens must be at least 1, got {max_tokens}", "raise --max-tokens",
                                   param="max_tokens")
        if top_k < 1:
            raise GroundglassError(f"top_k must be at least 1, got {top_k}", "raise --top-k", param="top_k")
        index = None if request.disable_search else self.index(request.index)
        if index is not None:
            _start_loading_embedder()  # seconds of imports, overlapped with loading the model
        llm = self.llm(request.model)
        temperature = request.temperature if request.temperature is not None else s.llm.temperature
        return _Job(request=request, question=question, llm=llm, index=index, max_tokens=max_tokens,
                    temperature=temperature, top_k=top_k)

    def _guarded(self, job: _Job) -> Iterator[Event]:
        """The pipeline, with a failure half-way turned into one ErrorEvent."""
        try:
            yield from self._run(job)
        except GroundglassError as exc:
            yield ErrorEvent(str(exc), exc.code)
        except Exception as exc:  # a bug: log it whole, tell the consumer in one line
            log.exception("engine_failed", error=repr(exc))
            yield ErrorEvent(f"internal error: {type(exc).__name__}: {exc}", "internal_error")

    def _run(self, job: _Job) -> Iterator[Event]:
        queries = [] if job.index is None else [job.question]

        warming = self._warm_system_prompt(job)  # runs beside retrieval
        try:
            sources = self._retrieve(job)
            job.lap("retrieve_s")
            sources = self._rank(job, sources)
            job.lap("rank_s")
            yield SourcesFound(sources=sources, queries=queries)
        finally:
            if warming is not None:
                warming.join()

        if job.index is not None and not sources:
            yield Token(prompt.DECLINE)
            yield Done(self._declined(job, len(queries)))
            return

        messages = prompt.build_messages(job.question, sources)
        completion = Completion()
        pieces: list[str] = []
        for text in self._generate(job, messages, completion, n_sources=len(sources)):
            pieces.append(text)
            yield Token(text)
        content = "".join(pieces).strip()

        attribution = self._attribute(content, sources)
        job.lap("cite_s")
        usage = Usage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                      num_search_queries=len(queries))
        yield Done(Answer(content=content, sources=sources, model=job.llm.name,
                          finish_reason=completion.finish_reason, usage=usage, attribution=attribution,
                          declined=cite.is_declined_answer(content), timings=dict(job.timings)))

    # --- the steps ---------------------------------------------------------------------------------

    def _warm_system_prompt(self, job: _Job) -> threading.Thread | None:
        """Pre-fill the fixed system prompt while retrieval runs (llama.cpp runtimes only; a no-op
        once the prefix is cached). Saves its prefill time from the first question's wait."""
        warm = getattr(job.llm, "warm", None)
        if warm is None or job.index is None:
            return None

        def run() -> None:
            try:
                warm([ChatMessage("system", prompt.SYSTEM_PROMPT)])
            except Exception as exc:  # only an optimisation: the real call reports real problems
                log.warning("warm_failed", error=repr(exc))

        thread = threading.Thread(target=run, name="groundglass-warm", daemon=True)
        thread.start()
        return thread

    def _retrieve(self, job: _Job) -> list[Source]:
        if job.index is None:
            return []
        keep = job.request.source_filter
        if keep is None:
            return job.index.search(job.question, k=job.top_k * 2, mode="hybrid")
        # filtered: look further down the ranking so enough sources survive the filter
        return [s for s in job.index.search(job.question, k=job.top_k * 8, mode="hybrid") if keep(s)]

    def _rank(self, job: _Job, candidates: list[Source]) -> list[Source]:
        """Dedupe, spread over documents, keep the relevant best ``top_k``, fit the token budget."""
        if not candidates:
            return []
        r = self.settings.retrieval
        sources = rank.diversify(rank.dedupe(candidates), r.max_per_source)
        sources = self._relevant(job, sources[: job.top_k * 2])[: job.top_k]
        fixed = prompt.fixed_prompt_tokens(job.question, job.llm.count_tokens)
        budget = min(r.context_tokens, job.llm.context_length - job.max_tokens - fixed)
        return rank.fit_budget(sources, budget, job.llm.count_tokens, overhead_tokens=SOURCE_OVERHEAD_TOKENS)

    def _relevant(self, job: _Job, sources: list[Source]) -> list[Source]:
        """Sources close enough to the question: MiniLM cosine >= ``min_relevance`` and within
        ``relevance_margin`` of the best candidate."""
        if not sources:
            return []
        similarity = self._similarity(job, sources)
        r = self.settings.retrieval
        floor = max(r.min_relevance, float(similarity.max()) - r.relevance_margin)
        log.debug("relevance", scores=[round(float(x), 3) for x in similarity], floor=floor)
        return [s for s, sim in zip(sources, similarity, strict=True) if sim >= floor]

    @staticmethod
    def _similarity(job: _Job, sources: list[Source]) -> np.ndarray:
        """Cosine of the question with each source: the index's stored chunk vectors when it has them
        all (no re-encoding), else fresh MiniLM embeddings of title + text."""
        from groundglass.answer.embeddings import get_embedder

        embedder = get_embedder()
        question = embedder.encode([job.question])[0]
        if job.index is not None and all(s.chunk_id.isdigit() for s in sources):
            ids, matrix = job.index.vectors()
            wanted = np.array([int(s.chunk_id) for s in sources], dtype=np.int64)
            rows = np.searchsorted(ids, wanted)  # ids are sorted
            if (rows < len(ids)).all() and np.array_equal(ids[rows], wanted):
                return matrix[rows] @ question
        return embedder.encode([f"{s.title}\n{s.text}" for s in sources]) @ question

    def _generate(self, job: _Job, messages: list[ChatMessage], completion: Completion,
                  n_sources: int) -> Iterator[str]:
        """The model's text as it comes, with markers that match no source taken out."""
        markers = cite.MarkerFilter(n_sources)
        max_tokens = self._room_to_answer(job, messages)
        first = True
        with closing(job.llm.stream(messages, max_tokens=max_tokens, temperature=job.temperature,
                                    top_p=job.request.top_p, stop=job.request.stop,
                                    completion=completion)) as tokens:
            for raw in tokens:
                text = markers.feed(raw)
                if text:
                    if first:
                        job.lap("first_token_s")
                        first = False
                    yield text
        tail = markers.flush()
        if tail:
            yield tail
        job.lap("generate_s")

    def _attribute(self, content: str, sources: list[Source]) -> list[SentenceSupport]:
        if not sources:
            return []
        from groundglass.answer.embeddings import get_embedder

        return cite.attribute(content, sources, get_embedder(), self.settings.retrieval.min_support)

    def _room_to_answer(self, job: _Job, messages: list[ChatMessage]) -> int:
        """``max_tokens``, cut so that prompt + answer fit the model's context window."""
        used = sum(job.llm.count_tokens(m.content) for m in messages) + 24
        room = job.llm.context_length - used
        if room < MIN_ANSWER_TOKENS:
            raise GroundglassError(f"the prompt ({used} tokens) leaves no room to answer in the model's "
                                   f"{job.llm.context_length}-token context",
                                   "lower retrieval.context_tokens or raise llm.context_length")
        return min(job.max_tokens, room)

    def _declined(self, job: _Job, num_queries: int) -> Answer:
        job.lap("generate_s")
        return Answer(content=prompt.DECLINE, sources=[], model=job.llm.name, finish_reason="stop",
                      usage=Usage(num_search_queries=num_queries), attribution=[], declined=True,
                      timings=dict(job.timings))


def _start_loading_embedder() -> None:
    """Load MiniLM in the background; the first real use waits for it (a failure there is reported
    by that use)."""
    from groundglass.answer.embeddings import get_embedder

    def load() -> None:
        try:
            get_embedder()
        except Exception as exc:
            log.debug("embedder_preload_failed", error=repr(exc))

    threading.Thread(target=load, name="groundglass-embedder", daemon=True).start()
