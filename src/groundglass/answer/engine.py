"""The answer engine: one question in, a stream of events out.

    (images -> visual facts) -> queries -> search (index or web) -> rank -> (decline if nothing
    relevant) -> prompt -> generate -> cite -> Done

While the search runs (web searches and page reads take seconds), the model already processes the
start of the prompt: the system message and the question (llama.cpp keeps that prefix in its cache;
:func:`groundglass.answer.prompt.prefix_messages`). The sources are appended when they are ready.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from groundglass.answer import cite, prompt, rank
from groundglass.answer.events import Done, ErrorEvent, Event, ImagesRead, SourcesFound, Token
from groundglass.answer.llm.base import LLM, ChatMessage, Completion
from groundglass.answer.retrieve import SEARCH_MODES, Found, WebSearch, search_index, source_filter
from groundglass.answer.types import Answer, AskRequest, SentenceSupport, Source, Usage
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.answer.index.store import LocalIndex
    from groundglass.answer.search.web import WebRetriever
    from groundglass.answer.vision import LoadedImage, VisualFacts
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
    search: str | None  # "index" | "web" | None when search is disabled
    index: LocalIndex | None  # the local index, in "index" mode
    web: WebRetriever | None  # the web retriever, in "web" mode
    images: list[LoadedImage]
    max_tokens: int
    temperature: float
    top_k: int | None  # None: the default for the search mode
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)

    def lap(self, name: str) -> None:
        self.timings[name] = round(time.perf_counter() - self.started, 4)


class Engine:
    """Grounded answers over a local index or the web."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._llms: dict[str, LLM] = {}
        self._indexes: dict[str, LocalIndex] = {}
        self._web: WebRetriever | None = None

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

    def web(self) -> WebRetriever:
        """The web retriever (search providers, cache and page reader of ``settings.search``)."""
        from groundglass.answer.search.web import WebRetriever

        with self._lock:
            if self._web is None:
                self._web = WebRetriever(self.settings)
            return self._web

    # --- the pipeline, top to bottom ---------------------------------------------------------------

    def _prepare(self, request: AskRequest) -> _Job:
        question = request.question.strip()
        if not question and request.images:
            from groundglass.answer.vision import IMPLIED_QUESTION

            question = IMPLIED_QUESTION.capitalize()
        if not question:
            raise GroundglassError("the question is empty",
                                   'ask something, e.g. groundglass ask "Who was Ada Lovelace?"',
                                   param="messages")
        s = self.settings
        max_tokens = request.max_tokens if request.max_tokens is not None else s.llm.max_tokens
        if max_tokens < 1:
            raise GroundglassError(f"max_tokens must be at least 1, got {max_tokens}", "raise --max-tokens",
                                   param="max_tokens")
        if request.top_k is not None and request.top_k < 1:
            raise GroundglassError(f"top_k must be at least 1, got {request.top_k}", "raise --top-k",
                                   param="top_k")
        if request.search not in SEARCH_MODES:
            raise GroundglassError(f"search must be one of {', '.join(SEARCH_MODES)}, got {request.search!r}",
                                   "use index (the local index) or web (the search providers)",
                                   param="search")
        search = None if request.disable_search else request.search
        images = self._load_images(request)
        index = self.index(request.index) if search == "index" else None
        web = None
        if search == "web":
            from groundglass.answer.search.web import _preset

            _preset(s, request.search_context_size)  # an unknown size raises here, at the call
            web = self.web()
        if search is not None:
            _start_loading_embedder()  # seconds of imports, overlapped with loading the model
        llm = self.llm(request.model)
        temperature = request.temperature if request.temperature is not None else s.llm.temperature
        top_k = request.top_k
        if top_k is None and search == "index":
            top_k = s.retrieval.top_k  # web: the search context size sets it
        return _Job(request=request, question=question, llm=llm, search=search, index=index, web=web,
                    images=images, max_tokens=max_tokens, temperature=temperature, top_k=top_k)

    def _load_images(self, request: AskRequest) -> list[LoadedImage]:
        """Every image loaded and checked (a bad one raises ImageError, a 400, before anything runs)."""
        if not request.images:
            return []
        from groundglass.answer.vision import load_images

        return load_images(request.images, self.settings)

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
        warming = self._warm_prefix(job)  # runs beside reading the images and searching
        try:
            facts = self._see(job)
            if facts:
                yield ImagesRead([f.as_dict() for f in facts])
            image_notes = self._describe(facts)
            queries = self._queries(job, facts)
            found = self._search(job, queries)
            job.lap("retrieve_s")
            sources = self._rank(job, found, image_notes)
            job.lap("rank_s")
            yield SourcesFound(sources=sources, queries=queries)
        finally:
            if warming is not None:
                warming.join()

        extras = {"queries": queries, "search_report": found.report(),
                  "visual_facts": [f.as_dict() for f in facts]}
        if job.search is not None and not sources:
            yield Token(prompt.DECLINE)
            yield Done(self._declined(job, len(queries), extras))
            return

        messages = prompt.build_messages(job.question, sources, image_notes=image_notes)
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
                          declined=cite.is_declined_answer(content), timings=dict(job.timings), **extras))

    # --- the steps ---------------------------------------------------------------------------------

    def _warm_prefix(self, job: _Job) -> threading.Thread | None:
        """Pre-fill the prompt's known start (system message and question) while the images are read
        and the search runs (llama.cpp runtimes only; a no-op for the part already cached)."""
        warm = getattr(job.llm, "warm", None)
        if warm is None or job.search is None or not self.settings.llm.prefill_during_search:
            return None

        def run() -> None:
            try:
                warm(prompt.prefix_messages(job.question))
            except Exception as exc:  # only an optimisation: the real call reports real problems
                log.warning("warm_failed", error=repr(exc))

        thread = threading.Thread(target=run, name="groundglass-warm", daemon=True)
        thread.start()
        return thread

    def _see(self, job: _Job) -> list[VisualFacts]:
        """The visual facts of the request's images: OCR text, labels, metadata, caption."""
        if not job.images:
            return []
        from groundglass.answer.vision import extract_facts

        facts = extract_facts(job.images, self.settings)
        job.lap("vision_s")
        return facts

    def _queries(self, job: _Job, facts: list[VisualFacts]) -> list[str]:
        """What to search: the question, or, with images, queries written from what they show."""
        if job.search is None:
            return []
        if not facts:
            return [job.question]
        from groundglass.answer.vision import image_queries

        v = self.settings.vision
        question = job.request.question.strip()  # "" when only images were given
        return image_queries(facts, question, max_queries=v.max_queries,
                             label_min_score=v.label_min_score) or [job.question]

    def _describe(self, facts: list[VisualFacts]) -> str:
        if not facts:
            return ""
        from groundglass.answer.vision import describe

        return describe(facts, label_min_score=self.settings.vision.label_min_score)

    def _search(self, job: _Job, queries: list[str]) -> Found:
        filters = job.request.search_filters
        if job.search == "index" and job.index is not None:
            assert job.top_k is not None
            keep = source_filter(filters, self.settings.search.undated)
            return search_index(job.index, queries, k=job.top_k * 2, keep=keep)
        if job.search == "web" and job.web is not None:
            size = job.request.search_context_size
            found = WebSearch(job.web, queries, filters, size, top_k=job.top_k).result()
            if not found.sources and all(r.provider is None for r in found.reports):
                raise GroundglassError(found.error or "no search provider answered",
                                       "configure a search provider in the [search] section of the config "
                                       "(see the README's web search section)", code="search_failed")
            return found
        return Found(sources=[], queries=[])

    def _rank(self, job: _Job, found: Found, image_notes: str) -> list[Source]:
        """Dedupe, spread over documents, keep the relevant best ``top_k``, fit the token budget."""
        if not found.sources:
            return []
        r = self.settings.retrieval
        top_k = job.top_k or found.top_k or r.top_k
        sources = rank.diversify(rank.dedupe(found.sources), r.max_per_source)
        sources = self._relevant(job, found.queries[0], sources[: top_k * 2])[:top_k]
        fixed = prompt.fixed_prompt_tokens(job.question, job.llm.count_tokens, image_notes)
        room = job.llm.context_length - job.max_tokens - fixed
        budget = min(found.context_tokens or r.context_tokens, room)
        return rank.fit_budget(sources, budget, job.llm.count_tokens, overhead_tokens=SOURCE_OVERHEAD_TOKENS)

    def _relevant(self, job: _Job, query: str, sources: list[Source]) -> list[Source]:
        """Sources close enough to the main query (the question, or what an image question asks
        about): MiniLM cosine >= ``min_relevance`` and within ``relevance_margin`` of the best one."""
        if not sources:
            return []
        similarity = self._similarity(job, query, sources)
        r = self.settings.retrieval
        floor = max(r.min_relevance, float(similarity.max()) - r.relevance_margin)
        log.debug("relevance", scores=[round(float(x), 3) for x in similarity], floor=floor)
        return [s for s, sim in zip(sources, similarity, strict=True) if sim >= floor]

    @staticmethod
    def _similarity(job: _Job, query: str, sources: list[Source]) -> np.ndarray:
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

    def _declined(self, job: _Job, num_queries: int, extras: dict[str, Any]) -> Answer:
        job.lap("generate_s")
        return Answer(content=prompt.DECLINE, sources=[], model=job.llm.name, finish_reason="stop",
                      usage=Usage(num_search_queries=num_queries), attribution=[], declined=True,
                      timings=dict(job.timings), **extras)


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
