"""The Responses API as a service over the answering bridge: a Responses request becomes a chat plan
(:mod:`groundglass.server.responses_request`), runs on the engine, and comes back as a response object
or as the stream of events OpenAI's SDK reads (:mod:`groundglass.server.responses_stream`). The
finished response carries ``images`` (and, for a web search, ``search_report``) at its top level, as
the chat completion does. A request with ``models`` tries them in order while a model fails. Every
request leaves one ledger row under ``/v1/responses``, as chat's do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from groundglass.answer.events import Done, ErrorEvent, Event, Token
from groundglass.answer.types import Answer, ChatMessage, Source
from groundglass.log import get_logger
from groundglass.server import responses_body as shape
from groundglass.server import responses_stream
from groundglass.server.answer_service import token_counter
from groundglass.server.answering import engine_failure
from groundglass.server.completions import citation_tokens, images_extra, usage_block
from groundglass.server.engine_limits import EngineLimits, effective_steps
from groundglass.server.errors import APIError
from groundglass.server.fetch_urls import DEFAULT_MAX_URLS, Fetched, fetch_urls, urls_in
from groundglass.server.response_store import ResponseStore, Stored, new_response_id
from groundglass.server.responses_request import Prepared, api_models, chat_request, input_messages
from groundglass.server.usage import usage_entry

if TYPE_CHECKING:
    from groundglass.server.answering import Answerer, Plan
    from groundglass.server.auth import Principal
    from groundglass.server.limits import RateLimits
    from groundglass.server.metrics import Metrics
    from groundglass.server.responses_schemas import ResponsesRequest
    from groundglass.server.usage import Cost, Pricing

log = get_logger(__name__)

ENDPOINT = "/v1/responses"
MAX_PRIOR_SOURCES = 24  # sources of earlier turns offered for reuse (most recent first)
MODEL_FAILURES = ("model_error", "invalid_model_output")  # what moves ``models`` on to the next


class ResponsesContext(Protocol):
    """What the service needs of the server (the server's state provides it)."""

    answerer: Answerer
    pricing: Pricing
    metrics: Metrics
    limits: RateLimits

    async def record(self, entry: object) -> None:
        """Write one ledger row."""
        ...


class ResponsesService:
    def __init__(self, st: ResponsesContext, store: ResponseStore) -> None:
        self.st = st
        self.store = store

    # --- before any work ---------------------------------------------------------------------------

    async def prepare(self, body: ResponsesRequest, who: Principal) -> Prepared:
        """Check the request and resolve it against its model; APIError for what cannot be answered."""
        earlier: Stored | None = None
        if body.previous_response_id:
            earlier = await anyio.to_thread.run_sync(self.store.load, who, body.previous_response_id)
            if earlier is None:
                raise APIError(
                    404,
                    f"no response {body.previous_response_id!r} to continue",
                    code="response_not_found",
                    param="previous_response_id",
                )
        history = earlier.messages if earlier else []
        model, *fallbacks = api_models(self.st.answerer.presets(), body)
        if body.fetch_tool() is not None:  # a bad request is refused before any page is read
            self._plan(body, model, history, [])
        fetched = await self._fetch(body)
        prior = [*fetched.sources, *(earlier.sources[:MAX_PRIOR_SOURCES] if earlier else [])]
        rid = new_response_id()
        return Prepared(
            body=body,
            who=who,
            plan=self._plan(body, model, history, prior),
            base=shape.skeleton(rid, body, model, time.time(), "in_progress"),
            history=[*history, *input_messages(body)],
            prior_sources=prior,
            earlier=history,
            fallbacks=fallbacks,
            fetched=fetched.item(shape.item_id("fu", rid, 0)),
        )

    async def _fetch(self, body: ResponsesRequest) -> Fetched:
        """The pages the question links, read for the ``fetch_url`` tool (nothing without it)."""
        tool = body.fetch_tool()
        if tool is None:
            return Fetched()
        question = next((m.text() for m in reversed(body.messages()) if m.role == "user"), "")
        urls = urls_in(question, tool.max_urls or DEFAULT_MAX_URLS)
        return await fetch_urls(self.st.answerer.settings, urls, question)

    def _plan(
        self, body: ResponsesRequest, model: str, history: list[ChatMessage], prior: list[Source]
    ) -> Plan:
        try:
            plan = self.st.answerer.plan(chat_request(body, model, history))
        except APIError as exc:  # the location is checked as chat's field: name the tool's
            chat_name = "web_search_options.user_location"
            at = (body.search_tool() or (0, None))[0]
            if exc.param and exc.param.startswith(chat_name):
                exc.param = f"tools.{at}.user_location" + exc.param.removeprefix(chat_name)
                exc.message = exc.message.replace(chat_name, f"tools[{at}].user_location")
            raise
        plan.ask.prior_sources = prior
        plan.limits = self._limits(body, model)
        return plan

    def _limits(self, body: ResponsesRequest, model: str) -> EngineLimits | None:
        """What ``body`` bounds of the engine's work (None: nothing)."""
        settings = self.st.answerer.settings
        at, tool = body.search_tool() or (0, None)
        per_page = tool.max_tokens_per_page if tool else None
        chunk = settings.retrieval.chunk_tokens
        if per_page is not None and per_page < chunk:
            raise APIError(
                400,
                f"tools[{at}].max_tokens_per_page is {per_page}, and pages are read in passages of {chunk} "
                f"tokens (retrieval.chunk_tokens): give {chunk} or more",
                code="invalid_value",
                param=f"tools.{at}.max_tokens_per_page",
            )
        limits = EngineLimits(
            effective_steps(body.max_steps, settings, model), tool.max_tokens if tool else None, per_page
        )
        return None if limits == EngineLimits() else limits

    def fall_back(self, p: Prepared, failure: APIError) -> bool:
        """Move ``p`` to the next of its ``models`` after ``failure`` of its model, when there is one
        and the failure is the model's (its endpoint down, its output unusable); False otherwise."""
        if failure.code not in MODEL_FAILURES or not p.fallbacks:
            return False
        model = p.fallbacks.pop(0)
        log.warning("responses_model_fallback", response_id=p.id, failed=p.plan.api_model, next=model)
        p.plan = self._plan(p.body, model, p.earlier, p.prior_sources)
        p.base["model"] = model
        return True

    async def load(self, who: Principal, response_id: str) -> dict[str, Any]:
        stored = await anyio.to_thread.run_sync(self.store.load, who, response_id)
        if stored is None or not stored.stored:
            raise APIError(
                404, f"no response {response_id!r}", code="response_not_found", param="response_id"
            )
        return stored.body

    # --- running -----------------------------------------------------------------------------------

    async def complete(self, p: Prepared, cancel: threading.Event) -> dict[str, Any]:
        """Answer ``p`` to the end: the response object, stored and in the ledger."""
        while True:
            try:
                answer, _ = await self.st.answerer.answer(p.plan, _attempt(p, cancel))
                break
            except APIError as exc:
                if not self.fall_back(p, exc):
                    raise
        chat_usage, cost = self.price(p.plan, answer)
        body = shape.finished(p.base, answer, chat_usage, time.time())
        body.update(images_extra(p.plan, answer))
        if p.fetched is not None:  # first, as a stream sends it
            body["output"] = [p.fetched, *body["output"]]
        await self.keep(p, answer, body)
        await self.record(p, 200, chat_usage, cost)
        return body

    async def start(
        self, p: Prepared, cancel: threading.Event
    ) -> tuple[AsyncGenerator[Event, None], list[Event]]:
        """The engine's events, and those taken before the response starts: the first, or, while
        ``models`` has a fallback left, all of them up to the answer's first text (a model that fails
        has failed by then, and the next is tried). A failure there is raised as an APIError, so that
        the client gets a real HTTP status."""
        while True:
            attempt = _attempt(p, cancel)
            stream = await self.st.answerer.start(p.plan, attempt)
            events = self.st.answerer.events(stream, attempt)
            try:
                head = await _head(events, until_text=bool(p.fallbacks))
                if head and isinstance(head[-1], ErrorEvent):
                    raise engine_failure(head[-1])
            except APIError as exc:
                await events.aclose()  # frees the engine slot
                if self.fall_back(p, exc):
                    continue
                raise
            except BaseException:
                await events.aclose()
                raise
            return events, head

    def stream(
        self, p: Prepared, events: AsyncGenerator[Event, None], head: list[Event], cancel: threading.Event
    ) -> AsyncIterator[dict[str, str]]:
        """Server-sent events ({"event", "data"}) in the order OpenAI's Responses stream has them."""
        return responses_stream.stream(self, p, events, head, cancel)

    # --- accounting --------------------------------------------------------------------------------

    def price(self, plan: Plan, answer: Answer) -> tuple[dict[str, Any], Cost]:
        count = token_counter(self.st.answerer, plan)
        searched = answer.usage.num_search_queries
        cites = citation_tokens(answer, count)
        chat_usage, cost = usage_block(self.st.pricing, plan, answer, searched, cites)
        self.st.metrics.tokens.labels("prompt").inc(answer.usage.prompt_tokens)
        self.st.metrics.tokens.labels("completion").inc(answer.usage.completion_tokens)
        return chat_usage, cost

    async def keep(self, p: Prepared, answer: Answer, body: dict[str, Any]) -> None:
        new = [s for s in answer.sources if all((s.url, s.text) != (o.url, o.text) for o in p.prior_sources)]
        said = shape.split_trace(answer.content)[1]  # the answer, without the <think> trace
        await anyio.to_thread.run_sync(
            lambda: self.store.save(
                p.who,
                body,
                [*p.history, ChatMessage("assistant", said)],
                [*new, *p.prior_sources][:MAX_PRIOR_SOURCES],
                stored=p.body.store,
            )
        )

    async def record(
        self, p: Prepared, status: int, chat_usage: dict[str, Any] | None = None, cost: Cost | None = None
    ) -> None:
        if chat_usage is not None:
            total = chat_usage.get("total_tokens") or chat_usage.get("completion_tokens") or 0
            await self.st.limits.charge_tokens(p.who, int(total))
        await self.st.record(
            usage_entry(
                p.who,
                request_id=p.id,
                model=p.plan.api_model,
                endpoint=ENDPOINT,
                status=status,
                started=p.started,
                usage=chat_usage,
                cost=cost,
            )
        )


class _Attempt(threading.Event):
    """One model's try at a request: set when the try ends (the engine bridge sets it when a run
    stops) and whenever the request's own cancel is, which stays unset for the next model's try."""

    def __init__(self, request: threading.Event) -> None:
        super().__init__()
        self.request = request

    def is_set(self) -> bool:
        return super().is_set() or self.request.is_set()


def _attempt(p: Prepared, cancel: threading.Event) -> threading.Event:
    """The cancel event for a try of ``p``: its own while a fallback model is left, else ``cancel``."""
    return _Attempt(cancel) if p.fallbacks else cancel


async def _head(events: AsyncGenerator[Event, None], *, until_text: bool) -> list[Event]:
    """The first event of ``events`` or, ``until_text``, every one up to the first of the answer's
    text, its end or a failure."""
    head: list[Event] = []
    async for event in events:
        head.append(event)
        if not until_text or isinstance(event, (Token, Done, ErrorEvent)):
            break
    return head
