"""The bridge from API requests to the answer engine: model presets, and engine runs off the event loop.

An API model name (``sonar``, ``sonar-pro``, ... or one from ``[server.models]``) picks a
:class:`~groundglass.config.ModelPreset`: which LLM, which index, how many sources (``top_k``), how
many tokens of them (``context_tokens``), the answer cap (``max_tokens``) and the reasoning effort.
``web_search_options.search_context_size`` scales ``top_k`` and ``context_tokens`` by
``server.context_scales[size] / server.context_scales[preset's size]``.

A preset's ``source`` says where sources come from: ``index`` (the local index, the default) or ``web``
(the providers of ``[search]``); a request's ``source`` and ``index`` override the preset's. A web
request passes its ``search_context_size`` (or the preset's) on to the engine, whose
``search.context_sizes`` say how many pages are read. The request's filters,
narrowed by its ``search_mode`` (:mod:`groundglass.server.search_modes`), hold in both places.
``web_search_options.user_location`` rides with the filters to the web search providers that take
it (:mod:`groundglass.server.location` refuses one that none would use).
``search_type`` sets the reasoning effort (``fast``: minimal, ``pro``: medium); with
``enable_search_classifier`` or ``search_type: "auto"`` a request that needs no sources (chit-chat,
arithmetic, rewriting the text it gives: :mod:`groundglass.server.search_classifier`) is answered
without a search, and ``auto`` gives a question that asks several things the ``pro`` effort.

Images: the ``image_url`` parts of the last user message become the request's images (an http(s)
URL or a ``data:`` URI; earlier turns' images are not read again); the question may be left out.
The engine decodes them, and fetches URLs through the guarded page reader (``[fetch]``:
address checks, timeout, content type, ``vision.max_image_bytes``), when ``start`` runs, so a bad
image is a 400 before any answer starts.

The engine is synchronous (llama.cpp runs in-process), so each run happens in a worker thread; its
events cross to the event loop through an asyncio queue. At most ``server.engine_concurrency`` runs
go at once. When the consumer goes away (a client disconnects, a job is cancelled), the run's
``cancel`` event is set and the thread closes the engine's generator before its next token, which
stops llama.cpp's generation.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import anyio

from groundglass.answer.events import Done, ErrorEvent, Event, SourcesFound
from groundglass.answer.types import Answer, AskRequest, ChatMessage
from groundglass.errors import GroundglassError
from groundglass.log import get_logger
from groundglass.server import chat_input
from groundglass.server.engine_limits import MAX_LIMITED_ENGINES, EngineLimits
from groundglass.server.errors import APIError
from groundglass.server.filters import build_filters
from groundglass.server.location import check_location, check_safe_search
from groundglass.server.regex_format import plain_answers
from groundglass.server.search_modes import narrow_to_mode
from groundglass.threads import native_thread

if TYPE_CHECKING:
    from groundglass.answer.engine import Engine
    from groundglass.answer.search.filters import SearchFilters
    from groundglass.config import ModelPreset, Settings
    from groundglass.server.metrics import Metrics
    from groundglass.server.schemas import ChatRequest

log = get_logger(__name__)
_END = object()


@dataclass
class Plan:
    """One chat request resolved against its preset: what the engine will run."""

    api_model: str
    preset: ModelPreset
    context_size: str
    context_tokens: int
    ask: AskRequest
    related_questions: bool
    plain_string: bool = False  # response_format regex: the answer's JSON string is given as the string
    return_images: bool = False
    num_images: int | None = None  # the most images returned (None: all found)
    limits: EngineLimits | None = None  # the Responses API's bounds on the engine (server.engine_limits)

    @property
    def engine_key(self) -> tuple[str, int, str, EngineLimits | None]:
        limited = (self.api_model, self.limits) if self.limits is not None else ("", None)
        return (self.ask.model or "", self.context_tokens, *limited)


class Answerer:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._engines: dict[tuple[str, int, str, EngineLimits | None], Engine] = {}
        self._lock = threading.Lock()
        self._slots: asyncio.Semaphore | None = None
        image_body = -(-settings.vision.max_image_bytes * 4 // 3) + 1000  # one image as a data: URI, in JSON
        if settings.server.max_body_bytes < image_body:
            log.warning(
                "body_limit_below_image_limit",
                max_body_bytes=settings.server.max_body_bytes,
                max_image_bytes=settings.vision.max_image_bytes,
                fix=f"raise server.max_body_bytes to {image_body} or more so that an image of "
                "vision.max_image_bytes fits in a request as a base64 data: URI",
            )

    # --- presets -----------------------------------------------------------------------------------

    def presets(self) -> dict[str, ModelPreset]:
        return dict(self.settings.server.models)

    def plan(self, body: ChatRequest) -> Plan:
        """Resolve model, sizes and messages; raises APIError for an unknown model or unusable input."""
        s = self.settings
        preset = s.server.models.get(body.model)
        if preset is None:
            names = ", ".join(sorted(s.server.models))
            raise APIError(
                404,
                f"the model '{body.model}' does not exist; models here: {names}",
                code="model_not_found",
                param="model",
            )
        images = chat_input.images(body)
        search = body.source or preset.source
        size = (
            body.web_search_options.search_context_size if body.web_search_options else None
        ) or preset.search_context_size
        sizes = s.server.context_scales
        scale = sizes.get(size, 1.0) / max(sizes.get(preset.search_context_size, 1.0), 1e-9)
        # web: search.context_sizes[size] sets how many chunks the model gets, unless the request says
        top_k = body.top_k if search == "web" else body.top_k or max(1, round(preset.top_k * scale))
        context_tokens = max(100, round(preset.context_tokens * scale))
        messages = chat_input.turns(body.messages)
        self._check_context(messages)
        max_tokens = body.max_tokens if body.max_tokens is not None else preset.max_tokens
        ask = AskRequest(
            messages=messages,
            index=body.index or preset.index or None,
            model=preset.llm or s.llm.model,
            max_tokens=max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            stop=body.stop_list(),
            disable_search=body.disable_search or not chat_input.search_needed(body),
            top_k=top_k,
            search=search,
            search_filters=self._filters(body, search),
            search_context_size=size if search == "web" else None,
            images=images,
            reasoning_effort=chat_input.effort(body),  # None: the preset's (effort.default_effort)
            preset_name=body.model,
            return_related_questions=body.return_related_questions,
            response_schema=chat_input.response_schema(body),
        )
        return Plan(
            api_model=body.model,
            preset=preset,
            context_size=size,
            context_tokens=context_tokens,
            ask=ask,
            related_questions=body.return_related_questions,
            plain_string=body.response_format is not None and body.response_format.type == "regex",
            return_images=body.return_images,
            num_images=body.num_images,
        )

    def _filters(self, body: ChatRequest, search: str) -> SearchFilters:
        """The request's filters, narrowed by its ``search_mode``, carrying its ``user_location`` (checked
        against the providers: a location nothing would use is a 400)."""
        s = self.settings
        filters = narrow_to_mode(build_filters(body, search=search), body.search_mode, s.server.search_modes)
        filters = replace(filters, images=chat_input.image_filters(body, search))
        if body.safe_search:
            check_safe_search(s, search=search)
            filters = replace(filters, safe_search=True)
        where = body.web_search_options.user_location if body.web_search_options else None
        if where is None:
            return filters
        location = where.location()
        check_location(s, location, search=search, param=body.location_param)
        return replace(filters, location=location)

    def _check_context(self, messages: list[ChatMessage]) -> None:
        """Refuse conversations that cannot fit the model's context window (a cheap upper bound)."""
        limit = self.settings.llm.context_length
        chars = sum(len(m.content) for m in messages)
        # Tokenizers average ~4 characters a token on English text; 3 keeps the estimate generous.
        estimate = chars // 3
        if estimate > limit:
            raise APIError(
                400,
                f"the messages are about {estimate} tokens, more than the model's {limit}-token "
                "context; shorten them",
                code="context_length_exceeded",
                param="messages",
            )

    # --- engines -----------------------------------------------------------------------------------

    def engine(self, plan: Plan) -> Engine:
        from groundglass.answer.engine import Engine

        with self._lock:
            engine = self._engines.get(plan.engine_key)
            if engine is None:
                s = self.settings
                settings = s.model_copy(
                    update={
                        "retrieval": s.retrieval.model_copy(update={"context_tokens": plan.context_tokens}),
                    }
                )
                if plan.limits is not None:
                    settings = plan.limits.apply(settings, plan.api_model)
                    limited = [k for k in self._engines if k[3] is not None]
                    if len(limited) >= MAX_LIMITED_ENGINES:  # a request still on it keeps its own reference
                        del self._engines[limited[0]]
                engine = Engine(settings)
                self._engines[plan.engine_key] = engine
            return engine

    def warm_up(self) -> None:
        """Load what the default preset needs (index, embedder, model) so the first request is quick."""
        from groundglass.server.schemas import ChatRequest

        name = "sonar" if "sonar" in self.settings.server.models else next(iter(self.settings.server.models))
        try:
            plan = self.plan(
                ChatRequest.model_validate(
                    {"model": name, "messages": [{"role": "user", "content": "warm up"}]}
                )
            )
            engine = self.engine(plan)
            engine.llm(plan.ask.model)
            if plan.ask.search == "index":
                engine.index(plan.ask.index).search("warm up", k=1)
        except Exception as exc:  # a missing index or model is reported when a request needs it
            log.warning("warm_up_failed", error=str(exc))

    def _slots_for_loop(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.server.engine_concurrency)
        return self._slots

    async def start(self, plan: Plan, cancel: threading.Event | None = None) -> Iterator[Event]:
        """Check ``plan`` and load what it needs (off the event loop); the engine's event iterator.

        A request the engine refuses (empty question, unknown index, bad model spec) raises APIError
        here, before a streamed response has sent its status line. Setting ``cancel`` ends the
        model's generation at its next token (not only at the engine's next event).
        """
        plan.ask.cancel = cancel
        engine = self.engine(plan)
        try:
            stream = await anyio.to_thread.run_sync(engine.stream, plan.ask)
            return plain_answers(stream) if plan.plain_string else stream
        except GroundglassError as exc:  # images are decoded (URLs fetched) here: a bad one is a 400
            param = exc.param or ("image_url" if exc.code == "invalid_image" else None)
            raise APIError(exc.status, str(exc), code=exc.code, param=param) from exc

    async def _take_slot(self, timings: dict[str, float] | None) -> asyncio.Semaphore:
        """Wait for one of the ``server.engine_concurrency`` engine slots (the wait goes in ``timings``
        as ``queue``); the caller releases it."""
        slots = self._slots_for_loop()
        if self.metrics:
            self.metrics.engine_waiting.inc()
        waited = time.perf_counter()
        try:
            await slots.acquire()
        finally:
            if self.metrics:
                self.metrics.engine_waiting.dec()
        if timings is not None:
            timings["queue"] = time.perf_counter() - waited
        if self.metrics:
            self.metrics.engine_inflight.inc()
        return slots

    async def events(
        self, stream: Iterator[Event], cancel: threading.Event, timings: dict[str, float] | None = None
    ) -> AsyncIterator[Event]:
        """Drive ``stream`` in a worker thread and yield its events here.

        Closing this generator (or cancelling its task) sets ``cancel``; the thread then closes the
        engine's generator before the next token, which stops generation.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (server shutting down)
                cancel.set()

        def work() -> None:
            try:
                for event in stream:
                    if cancel.is_set():
                        break
                    put(event)
            except BaseException as exc:
                put(exc)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # GeneratorExit inside the engine stops the model's generation
                put(_END)

        slots = await self._take_slot(timings)
        thread_done = anyio.Event()

        def run_and_signal() -> None:
            try:
                work()
            finally:
                with suppress(RuntimeError):  # the loop is gone
                    loop.call_soon_threadsafe(thread_done.set)

        native_thread(run_and_signal, "engine-run").start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            cancel.set()
            # Hold the slot until the thread has really stopped, even when this task is being cancelled.
            with anyio.CancelScope(shield=True):
                await thread_done.wait()
            slots.release()
            if self.metrics:
                self.metrics.engine_inflight.dec()

    async def answer(
        self, plan: Plan, cancel: threading.Event | None = None, timings: dict[str, float] | None = None
    ) -> tuple[Answer, list[str]]:
        """Run ``plan`` to the end: (the answer, the search queries). Engine failures raise APIError.

        ``timings`` (when given) receives ``queue`` (waiting for an engine slot) and ``engine`` (the
        engine's own time, preparing and running), in seconds.
        """
        cancel = cancel or threading.Event()
        queries: list[str] = []
        timings = timings if timings is not None else {}
        started = time.perf_counter()
        try:
            stream = await self.start(plan, cancel)
            async with aclosing(self.events(stream, cancel, timings)) as events:
                async for event in events:
                    if isinstance(event, SourcesFound):
                        queries = list(event.queries)
                    elif isinstance(event, Done):
                        timings["engine"] = time.perf_counter() - started - timings.get("queue", 0.0)
                        return event.answer, queries
                    elif isinstance(event, ErrorEvent):
                        raise engine_failure(event)
        except GroundglassError as exc:
            raise APIError(exc.status, str(exc), code=exc.code, param=exc.param) from exc
        if cancel.is_set():
            raise APIError(499, "the request was cancelled", code="cancelled")
        raise APIError(500, "the engine stopped without an answer", code="engine_error")


ENGINE_FAILURE_STATUS = {
    "model_error": 502,
    "invalid_model_output": 502,
    "search_failed": 502,
    "internal_error": 500,
    "engine_error": 500,
}
ENGINE_FAILURE_WHAT = {"search_failed": "the web search failed"}


def engine_failure(event: ErrorEvent) -> APIError:
    """An engine failure mid-way as an API error: the model's endpoint or every search provider (502),
    a bug (500), or a problem with the request that only showed once the sources were in (400, e.g. a
    prompt with no room left)."""
    status = ENGINE_FAILURE_STATUS.get(event.code, 400)
    what = ENGINE_FAILURE_WHAT.get(event.code, "the answer engine failed")
    return APIError(status, f"{what}: {event.message}", code=event.code)
