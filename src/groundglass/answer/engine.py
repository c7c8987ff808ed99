"""The answer engine: one question in, a stream of events out.

    (images -> visual facts) -> standalone query (a follow-up rewritten from the conversation)
    -> reuse earlier sources, or search: one query, or a plan of sub-queries in waves and rounds
    (the reasoning effort) -> rank -> (decline if nothing relevant) -> prompt -> generate -> cite
    -> related questions -> Done

Reasoning effort (:mod:`groundglass.answer.effort`): ``minimal`` searches the question as asked;
higher levels plan sub-queries (:mod:`groundglass.answer.research`), answer each briefly, search again
when evidence is missing, and write longer answers. With a trace (``think``), the answer starts with a
``<think>...</think>`` block that streams as the steps finish; the steps are also in ``Answer.reasoning``.

While the search runs (web searches and page reads take seconds), the model already processes the
start of the prompt: the system message and the question (llama.cpp keeps that prefix in its cache;
:func:`groundglass.answer.prompt.prefix_messages`). The sources are appended when they are ready.

``Engine(settings).stream(request)`` checks the request and loads what it needs *before* it returns
(so a bad question, model spec or index name raises :class:`~groundglass.errors.GroundglassError`
at the call, where the CLI and the server turn it into a clean error), then yields
``SourcesFound`` -> ``Token``... -> ``Done``; a failure after that point arrives as one
``ErrorEvent``. ``Engine.answer(request)`` drains the same pipeline and returns the ``Answer``.

Its parts: :mod:`~groundglass.answer.request_checks` (a bad request refused at the call),
:mod:`~groundglass.answer.job` (one checked request), :mod:`~groundglass.answer.sourcing` (what to
search, the searches and the ranking, with :mod:`~groundglass.answer.relevance` deciding which
sources are close enough to the question; none left means a decline without calling the model) and
:mod:`~groundglass.answer.writer` (the model's text, checked a sentence at a time).

The engine holds no per-request state: models and indexes are loaded on first use and cached, so
one Engine serves concurrent requests (the server) as well as one-off questions (the CLI).
Nothing here knows about the terminal or HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from groundglass.answer import cite, conversation, prompt, request_checks, sourcing, writer
from groundglass.answer.effort import preset_for
from groundglass.answer.events import Done, ErrorEvent, Event, ImagesRead, SourcesFound, Token
from groundglass.answer.job import Job
from groundglass.answer.llm.base import LLM, Completion
from groundglass.answer.research import Research
from groundglass.answer.retrieve import Found
from groundglass.answer.trace import Trace
from groundglass.answer.types import Answer, AskRequest, ChatMessage, SentenceSupport, Source, Usage
from groundglass.errors import GroundglassError
from groundglass.log import get_logger
from groundglass.threads import native_thread

if TYPE_CHECKING:
    from groundglass.answer.conversation import RewriteResult
    from groundglass.answer.index.store import LocalIndex
    from groundglass.answer.retrieve import WebSearch
    from groundglass.answer.search.web import WebRetriever
    from groundglass.answer.vision import LoadedImage, VisualFacts
    from groundglass.config import Settings

log = get_logger(__name__)


@dataclass
class Gathered:
    """What the search half of a run hands to the writing half."""

    facts: list[VisualFacts]  # what the images show
    image_notes: str  # the facts as the prompt shows them
    query: str  # the standalone query
    found: Found  # every candidate, with the queries and the search report
    sources: list[Source]  # ranked, gated and fitted: what the model sees
    steps: Research | None  # the research plan's steps, when the effort plans
    reused: bool  # the earlier turns' sources were enough: nothing was searched


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

    def _prepare(self, request: AskRequest) -> Job:
        """The request checked (a bad value raises here, at the call) and what it runs on loaded."""
        messages = request_checks.question_messages(request)
        question = messages[-1].content.strip()
        s = self.settings
        system, earlier, _ = conversation.split_turns(conversation.normalize_messages(messages))
        instructions = "\n".join(m.content.strip() for m in system if m.content.strip())
        effort = preset_for(request.reasoning_effort, request.preset_name or request.model or s.llm.model, s)
        max_tokens = request_checks.answer_max_tokens(request, s, effort)
        request_checks.check_search(request)
        search = None if request.disable_search else request.search
        images = self._load_images(request)
        index = self.index(request.index) if search == "index" else None
        web = None
        if search == "web":
            from groundglass.answer.search.web import context_preset

            context_preset(s, request.search_context_size)  # an unknown size raises here, at the call
            web = self.web()
        if search is not None:
            _start_loading_embedder()  # seconds of imports, overlapped with loading the model
        early = self._early_search(request, web, question, bool(earlier), effort.plans)
        try:
            llm = self.llm(request.model)
            request_checks.check_prompt_lengths(llm, question, instructions)
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        effort = effort.fit(llm.context_length)
        history = request_checks.prompt_history(earlier, llm, budget=llm.context_length // 4)
        temperature = request.temperature if request.temperature is not None else s.llm.temperature
        top_k = request.top_k
        if top_k is None and search == "index":
            top_k = s.retrieval.top_k  # web: the search context size sets it
        return Job(
            request=request,
            question=question,
            llm=llm,
            search=search,
            index=index,
            web=web,
            images=images,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            effort=effort,
            history=history,
            instructions=instructions,
            early_search=early,
        )

    def _early_search(
        self, request: AskRequest, web: WebRetriever | None, question: str, history: bool, plans: bool
    ) -> WebSearch | None:
        """The web search of a question that will be searched as asked, started before the model
        loads: loading a GGUF model repacks its weights on one core for about two seconds, while the
        search mostly waits on the network and reads pages on the other (1.4 s saved per CLI answer,
        median of 8 cold-cache runs). Not when the query depends on the model or on earlier turns
        (a follow-up is rewritten, a plan writes its own queries, images are read first), nor when
        earlier sources may make a search unnecessary."""
        if web is None or history or plans or request.images or request.prior_sources:
            return None
        from groundglass.answer import planner
        from groundglass.answer.retrieve import WebSearch

        queries = [question, *planner.part_queries(question)]
        return WebSearch(web, queries, request.search_filters, request.search_context_size, request.top_k)

    def _load_images(self, request: AskRequest) -> list[LoadedImage]:
        """Every image loaded and checked (a bad one raises ImageError, a 400, before anything runs)."""
        if not request.images:
            return []
        from groundglass.answer.vision import load_images

        return load_images(request.images, self.settings)

    def _guarded(self, job: Job) -> Iterator[Event]:
        """The pipeline, with a failure half-way turned into one ErrorEvent."""
        try:
            yield from self._run(job)
        except GroundglassError as exc:
            yield ErrorEvent(str(exc), exc.code)
        except Exception as exc:  # a bug: log it whole, tell the consumer in one line
            log.exception("engine_failed", error=repr(exc))
            yield ErrorEvent(f"internal error: {type(exc).__name__}: {exc}", "internal_error")

    def _run(self, job: Job) -> Iterator[Event]:
        trace = Trace(job.effort.think)
        gathered = yield from self._gather(job, trace)
        yield from self._write(job, trace, gathered)

    def _gather(self, job: Job, trace: Trace) -> Generator[Event, None, Gathered]:
        """Images read, the query made standalone, the sources found and ranked; ends with
        ``SourcesFound``."""
        # Pre-fill the prompt's start beside reading the images and searching. llama.cpp caches one
        # prompt, so not while other model calls (a follow-up's rewrite, a plan's steps) would replace it.
        planned = job.effort.plans and not job.images
        warming = None if job.history or planned else self._warm_prefix(job)
        try:
            facts = self._see(job)
            if facts:
                yield ImagesRead([f.as_dict() for f in facts])
            image_notes = self._describe(facts)
            yield from trace.open()
            rewrite = self._standalone_query(job)
            yield from trace.rewritten(rewrite)
            if warming is None and not planned:
                warming = self._warm_prefix(job)  # after the rewrite, beside the search
            query = rewrite.query if rewrite is not None else job.question
            coverage = sourcing.coverage(job, query)
            reused = coverage is not None and coverage.covered
            yield from trace.reuse(coverage, reused)
            steps: Research | None = None
            if coverage is not None and coverage.covered:
                found = Found(sources=coverage.kept, queries=[query])
            elif job.search is not None and job.effort.plans and not facts:
                steps = yield from sourcing.research_steps(job, self.settings, query, trace)
                found = Found(sources=steps.sources, queries=steps.queries)
            else:
                found = sourcing.search(
                    job, self.settings, sourcing.queries_for(job, self.settings, query, facts)
                )
                if job.search is not None:
                    yield from trace.searched(found)
            if coverage is not None and not reused:  # earlier sources still relevant stay candidates
                found.sources = [*found.sources, *coverage.kept]
            job.lap("retrieve_s")
            sources = sourcing.rank_sources(job, self.settings, found, image_notes, query, gate=steps is None)
            job.lap("rank_s")
            yield from trace.close()
            yield SourcesFound(sources=sources, queries=found.queries)
        finally:
            if warming is not None:
                warming.join()
        return Gathered(facts, image_notes, query, found, sources, steps, reused)

    def _write(self, job: Job, trace: Trace, g: Gathered) -> Iterator[Event]:
        """The answer streamed (or declined when no source is left), then ``Done``."""
        n_searched = 0 if g.reused else len(g.found.queries)
        extras: dict[str, Any] = {
            "queries": g.found.queries,
            "search_report": g.found.report(),
            "visual_facts": [f.as_dict() for f in g.facts],
            "reasoning": trace.summary(job.effort, g.query, g.steps, g.reused, job.effort.think),
        }
        lead = self._recognised(g.facts, job.request.response_schema)  # "In the image: ...", said first
        if lead:
            yield Token(lead)
        if job.search is not None and not g.sources:
            yield Token(prompt.DECLINE)
            yield Done(self._declined(job, n_searched, trace.text + lead + prompt.DECLINE, extras))
            return

        history = list(job.history)
        schema = job.request.response_schema
        messages = prompt.build_messages(
            job.question,
            g.sources,
            image_notes=g.image_notes,
            history=history,
            instructions=job.instructions,
            style="json" if schema is not None else job.effort.answer_style,
        )
        completion = Completion()
        checks = None
        if schema is not None:  # structured output: the whole JSON at once, under the schema's grammar
            answer_text = writer.generate_json(job, messages, schema, completion)
            yield Token(answer_text)
        else:
            answer_text, checks = yield from writer.write_checked(job, messages, completion, g.sources)
        yield Done(self._finished(job, trace, g, (lead, answer_text), completion, checks, n_searched, extras))

    def _finished(
        self,
        job: Job,
        trace: Trace,
        g: Gathered,
        said: tuple[str, str],
        completion: Completion,
        checks: dict[str, Any] | None,
        n_searched: int,
        extras: dict[str, Any],
    ) -> Answer:
        """The answer with its attribution, related questions, usage and timings. ``said``: the
        opening line for an image question, and the model's answer."""
        lead, answer_text = said
        schema = job.request.response_schema
        sources = g.sources
        attribution = [] if schema is not None else self._attribute(answer_text, sources, job.question)
        job.lap("cite_s")
        related = self._related(job, g.query, answer_text, sources)
        usage = Usage(
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            num_search_queries=n_searched,
            cached_tokens=completion.cached_tokens,
            reasoning_tokens=job.reasoning_tokens + job.llm.count_tokens(trace.text),
        )
        return Answer(
            content=trace.text + lead + answer_text,
            sources=sources,
            model=job.llm.name,
            finish_reason=completion.finish_reason,
            usage=usage,
            attribution=attribution,
            declined=schema is None and cite.is_declined_answer(answer_text),
            timings=dict(job.timings),
            related_questions=related,
            grounding=checks,
            **extras,
        )

    # --- the steps ---------------------------------------------------------------------------------

    def _warm_prefix(self, job: Job) -> threading.Thread | None:
        """Pre-fill the prompt's known start (system message and question) while the images are read
        and the search runs (llama.cpp runtimes only; a no-op for the part already cached)."""
        warm = getattr(job.llm, "warm", None)
        if warm is None or job.search is None or not self.settings.llm.prefill_during_search:
            return None

        def run() -> None:
            try:
                history = list(job.history)
                warm(prompt.prefix_messages(job.question, history, job.instructions))
            except Exception as exc:  # only an optimisation: the real call reports real problems
                log.warning("warm_failed", error=repr(exc))

        thread = threading.Thread(target=run, name="groundglass-warm", daemon=True)
        thread.start()
        return thread

    def _see(self, job: Job) -> list[VisualFacts]:
        """The visual facts of the request's images: OCR text, labels, metadata, caption."""
        if not job.images:
            return []
        from groundglass.answer.vision import extract_facts

        facts = extract_facts(job.images, self.settings)
        job.lap("vision_s")
        return facts

    def _standalone_query(self, job: Job) -> RewriteResult | None:
        """A follow-up rewritten as a search query that needs no history; None for a first turn."""
        if not job.history or job.search is None:
            return None
        completion = Completion()
        messages = [*job.history, ChatMessage("user", job.question)]
        rewrite = conversation.standalone_query(job.llm, messages, completion=completion)
        job.reasoning_tokens += completion.completion_tokens
        job.lap("rewrite_s")
        return rewrite

    def _recognised(self, facts: list[VisualFacts], schema: dict[str, Any] | None) -> str:
        """The answer's opening line for an image question (not for structured output)."""
        if not facts or schema is not None:
            return ""
        from groundglass.answer.vision import recognised

        return recognised(facts, self.settings.vision.label_min_score) + "\n\n"

    def _describe(self, facts: list[VisualFacts]) -> str:
        if not facts:
            return ""
        from groundglass.answer.vision import describe

        return describe(facts, label_min_score=self.settings.vision.label_min_score)

    def _attribute(self, content: str, sources: list[Source], question: str) -> list[SentenceSupport]:
        if not sources:
            return []
        from groundglass.answer.embeddings import get_embedder

        return cite.attribute(content, sources, get_embedder(), self.settings.retrieval.min_support, question)

    def _related(self, job: Job, query: str, answer: str, sources: list[Source]) -> list[str]:
        """Follow-up questions the sources can answer, when asked for (or the effort says so)."""
        wanted = job.request.return_related_questions
        if not (job.effort.related_questions if wanted is None else wanted) or not sources:
            return []
        from groundglass.answer.embeddings import get_embedder
        from groundglass.answer.related import related_questions

        completion = Completion()
        out = related_questions(
            job.llm, query, answer, sources, embedder=get_embedder(), completion=completion
        )
        job.reasoning_tokens += completion.completion_tokens
        job.lap("related_s")
        return out

    def _declined(self, job: Job, num_queries: int, content: str, extras: dict[str, Any]) -> Answer:
        job.lap("generate_s")
        return Answer(
            content=content,
            sources=[],
            model=job.llm.name,
            finish_reason="stop",
            usage=Usage(num_search_queries=num_queries, reasoning_tokens=job.reasoning_tokens),
            attribution=[],
            declined=True,
            timings=dict(job.timings),
            **extras,
        )


def _start_loading_embedder() -> None:
    """Load MiniLM in the background; the first real use waits for it (a failure there is reported
    by that use). A :func:`~groundglass.threads.native_thread`: the interpreter waits for it at exit."""
    from groundglass.answer.embeddings import get_embedder

    def load() -> None:
        try:
            get_embedder()
        except Exception as exc:
            log.debug("embedder_preload_failed", error=repr(exc))

    native_thread(load, "groundglass-embedder").start()
