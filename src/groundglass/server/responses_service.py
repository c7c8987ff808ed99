"""The Responses API as a service over the answering bridge: a Responses request becomes a chat plan
(the same presets, filters, effort and checks as ``/chat/completions``), runs on the engine, and
comes back as a response object or as the stream of events OpenAI's SDK reads.

How the request maps onto a chat request: ``instructions`` is a system message for this response
only; ``previous_response_id`` puts the stored conversation before ``input`` and offers its sources
for reuse; ``preset`` / ``reasoning.effort`` is ``reasoning_effort``; ``max_output_tokens`` is
``max_tokens``; the ``web_search`` tool's filters are chat's filter fields (``allowed_domains`` joins
``search_domain_filter``) and its ``search_context_size`` is ``web_search_options``'. The tool searches
where the model searches (the local index on an offline install, else the web providers); ``tools: []``
answers without searching. A request left without a ``model`` uses ``sonar``. A regex ``text.format``
(or ``response_format``) is chat's ``response_format`` regex, and ``return_images`` with its filters are
chat's own fields: the finished response carries ``images`` (and, for a web search, ``search_report``)
at its top level, as the chat completion does.

Streaming sends, each with its ``sequence_number``: ``response.created``, ``response.in_progress``;
for a ``<think>`` trace a ``reasoning`` item (``response.output_item.added``,
``response.reasoning_summary_part.added``, ``response.reasoning_summary_text.delta`` per line,
``.done``, ``response.reasoning_summary_part.done``, ``response.output_item.done``); per search
``response.output_item.added`` (a ``web_search_call``),
``response.web_search_call.in_progress`` / ``.searching`` / ``.completed``,
``response.output_item.done``; then for the answer ``response.output_item.added`` (the message),
``response.content_part.added``, ``response.output_text.delta`` per piece of text,
``response.output_text.annotation.added`` per citation, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``; last ``response.completed`` (or
``response.incomplete`` when ``max_output_tokens`` cut the answer short). A failure after the stream
started is ``response.failed`` then an ``error`` event whose body the SDKs raise as an API error.
Every request leaves one ledger row under ``/v1/responses``, as chat's do.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from pydantic import ValidationError

from groundglass.answer.events import Done, ErrorEvent, Event, SourcesFound, StepDone, Token
from groundglass.answer.types import Answer, ChatMessage, Source
from groundglass.log import get_logger
from groundglass.server import chat_input
from groundglass.server import responses_body as shape
from groundglass.server.answer_service import token_counter
from groundglass.server.answering import engine_failure
from groundglass.server.completions import citation_tokens, images_extra, usage_block
from groundglass.server.engine_limits import EngineLimits, effective_steps
from groundglass.server.errors import APIError
from groundglass.server.fetch_urls import DEFAULT_MAX_URLS, Fetched, fetch_urls, urls_in
from groundglass.server.response_store import ResponseStore, Stored, new_response_id
from groundglass.server.schemas import ChatRequest
from groundglass.server.usage import streamed_usage, usage_entry

if TYPE_CHECKING:
    from groundglass.server.answering import Answerer, Plan
    from groundglass.server.auth import Principal
    from groundglass.server.limits import RateLimits
    from groundglass.server.metrics import Metrics
    from groundglass.server.responses_schemas import ResponsesRequest
    from groundglass.server.usage import Cost, Pricing

log = get_logger(__name__)

ENDPOINT = "/v1/responses"
DEFAULT_MODEL = "sonar"
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


@dataclass
class Prepared:
    """A checked request: its plan, the conversation it continues and the object it will answer with."""

    body: ResponsesRequest
    who: Principal
    plan: Plan
    base: dict[str, Any]  # the response object before any output
    history: list[ChatMessage]  # the earlier turns (stored), then this request's input, instructions left out
    prior_sources: list[Source] = field(default_factory=list)
    earlier: list[ChatMessage] = field(default_factory=list)  # the stored turns alone
    fallbacks: list[str] = field(default_factory=list)  # ``models`` left to try, in order
    fetched: dict[str, Any] | None = None  # the fetch_url tool's output item, when it read anything
    started: float = field(default_factory=time.perf_counter)

    @property
    def id(self) -> str:
        return str(self.base["id"])


def api_models(st: ResponsesContext, body: ResponsesRequest) -> list[str]:
    """The models to try, in order: ``models``' names this server has (a 400 when it has none of
    them), else ``model``, else ``sonar`` (or the first preset)."""
    presets = st.answerer.presets()
    if body.models:
        known = [m for m in dict.fromkeys(body.models) if m in presets]
        if not known:
            raise APIError(
                400,
                f"none of models ({', '.join(body.models)}) is a model of this server; models here: "
                f"{', '.join(sorted(presets))}",
                code="model_not_found",
                param="models",
            )
        return known
    if body.model:
        return [body.model]
    return [DEFAULT_MODEL if DEFAULT_MODEL in presets else sorted(presets)[0]]


def chat_request(body: ResponsesRequest, model: str, earlier: list[ChatMessage]) -> ChatRequest:
    """The chat request that answers ``body`` after the ``earlier`` turns."""
    messages: list[dict[str, Any]] = []
    if body.instructions and body.instructions.strip():
        messages.append({"role": "system", "content": body.instructions})
    messages += [{"role": m.role, "content": m.content} for m in earlier]
    for m in body.messages():
        urls = m.image_urls()
        if urls:
            parts: list[dict[str, Any]] = [{"type": "text", "text": m.text()}] if m.text() else []
            parts += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
            messages.append({"role": m.role, "content": parts})
        else:
            messages.append({"role": m.role, "content": m.text()})
    chat: dict[str, Any] = {"model": model, "messages": messages, "stream": body.stream}
    optional = {
        "max_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "reasoning_effort": body.effort(),
        "language_preference": body.language_preference,
    }
    chat.update({k: v for k, v in optional.items() if v is not None})
    structured = body.json_schema()
    if structured is not None:
        name, schema, strict = structured
        spec: dict[str, Any] = {"schema": schema, "name": name, "strict": strict}
        spec = {k: v for k, v in spec.items() if v is not None}
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    pattern = body.regex()
    if pattern is not None:
        chat["response_format"] = {"type": "regex", "regex": {"regex": pattern}}
    if body.return_images:
        chat["return_images"] = True
    images = {
        "image_domain_filter": body.image_domain_filter,
        "image_format_filter": body.image_format_filter,
        "num_images": body.num_images,
    }
    chat.update({k: v for k, v in images.items() if v is not None})
    if body.tools is not None and not body.tools:
        chat["disable_search"] = True
    found = body.search_tool()
    tool = found[1] if found else None
    if tool is not None:
        options: dict[str, Any] = {}
        if tool.search_context_size:
            options["search_context_size"] = tool.search_context_size
        if tool.user_location is not None:
            options["user_location"] = tool.user_location.model_dump(exclude_none=True)
        if options:
            chat["web_search_options"] = options
        if tool.filters is not None:
            f = tool.filters.model_dump(exclude_none=True)
            domains = [*f.pop("search_domain_filter", []), *f.pop("allowed_domains", [])]
            if domains:
                f["search_domain_filter"] = domains
            chat.update(f)
    try:
        return ChatRequest.model_validate(chat)
    except ValidationError as exc:  # the fields were checked as Responses fields: name the chat one
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ()))
        raise APIError(
            400, f"invalid value for '{param}': {first.get('msg')}", code="invalid_value", param=param or None
        ) from exc


def input_messages(body: ResponsesRequest) -> list[ChatMessage]:
    """This request's input as conversation turns (text only; ``developer`` is ``system``)."""
    return chat_input.turns(body.messages())


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
        model, *fallbacks = api_models(self.st, body)
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

    async def stream(
        self, p: Prepared, events: AsyncGenerator[Event, None], head: list[Event], cancel: threading.Event
    ) -> AsyncIterator[dict[str, str]]:
        """Server-sent events ({"event", "data"}) in the order OpenAI's Responses stream has them."""
        run = _StreamRun(self, p)
        try:
            for sse in run.opening():
                yield sse
            async with aclosing(_chain(head, events)) as chained:
                async for event in chained:
                    if isinstance(event, ErrorEvent):
                        failure = engine_failure(event)
                        await run.finish(failure.status)
                        for sse in run.failed(failure):
                            yield sse
                        return
                    if isinstance(event, Done):
                        for sse in await run.done(event.answer):
                            yield sse
                        continue
                    for sse in run.on(event):
                        yield sse
        except APIError as exc:  # raised by the engine bridge mid-stream
            await run.finish(exc.status)
            for sse in run.failed(exc):
                yield sse
        except Exception as exc:
            log.exception("responses_stream_failed", response_id=p.id, error=repr(exc))
            await run.finish(500)
            failure = APIError(500, f"internal error ({type(exc).__name__})", code="internal_error")
            for sse in run.failed(failure):
                yield sse
        finally:
            cancel.set()
            with anyio.CancelScope(shield=True):
                await run.finish(499)  # no-op unless the client went away before the end

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


class _StreamRun:
    """One streamed response: its sequence numbers, the output items sent so far (each with its output
    index, in the order they were added), and its one ledger row."""

    def __init__(self, service: ResponsesService, p: Prepared) -> None:
        self.service = service
        self.p = p
        self.seq = 0
        self.items: dict[int, dict[str, Any]] = {}  # finished items (searches, reasoning) by output index
        self.next_index = 0
        self.searches = 0
        self.thinking: dict[str, Any] | None = None  # the reasoning item while its trace streams
        self.message_index: int | None = None
        self.n_tokens = 0
        self.queries: list[str] = []
        self.recorded = False

    @property
    def message_id(self) -> str:
        return shape.item_id("msg", self.p.id, 0)

    def index(self) -> int:
        """The next output index."""
        self.next_index += 1
        return self.next_index - 1

    def sse(self, kind: str, **fields: Any) -> dict[str, str]:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return {"event": kind, "data": json.dumps(data, ensure_ascii=False)}

    def opening(self) -> list[dict[str, str]]:
        out = [
            self.sse("response.created", response=self.p.base),
            self.sse("response.in_progress", response=self.p.base),
        ]
        if self.p.fetched is not None:  # the pages were read before the response started
            index = self.index()
            self.items[index] = self.p.fetched
            out += [
                self.sse("response.output_item.added", output_index=index, item=self.p.fetched),
                self.sse("response.output_item.done", output_index=index, item=self.p.fetched),
            ]
        return out

    def search(self, query: str, urls: list[str] | None) -> list[dict[str, str]]:
        index = self.index()
        item_id = shape.item_id("ws", self.p.id, self.searches)
        self.searches += 1
        added = shape.search_item(item_id, query, None, status="in_progress")
        done = shape.search_item(item_id, query, urls)
        self.items[index] = done
        where = {"output_index": index, "item_id": item_id}
        return [
            self.sse("response.output_item.added", output_index=index, item=added),
            self.sse("response.web_search_call.in_progress", **where),
            self.sse("response.web_search_call.searching", **where),
            self.sse("response.web_search_call.completed", **where),
            self.sse("response.output_item.done", output_index=index, item=done),
        ]

    def on(self, event: Event) -> list[dict[str, str]]:
        if isinstance(event, StepDone):  # a search of a multi-step answer, as it finishes
            step = event.step
            return self.search(step["query"], [s["url"] for s in step.get("sources", [])])
        if isinstance(event, SourcesFound):
            self.queries = list(event.queries)
            if self.searches or self._reused(event.sources):
                return []
            whole = [s.url for s in event.sources] if len(event.queries) == 1 else None
            return [sse for q in event.queries for sse in self.search(q, whole)]
        if isinstance(event, Token):
            self.n_tokens += 1
            return self.text(event.text)
        return []  # images read: their facts come with the answer (the chat API's visual_facts)

    def text(self, piece: str) -> list[dict[str, str]]:
        """A piece of the answer's text: the ``<think>`` trace goes to a reasoning item, the rest to the
        message (the engine sends the trace's tags as pieces of their own)."""
        if self.thinking is None and self.message_index is None and piece == shape.THINK_OPEN:
            return self.open_thinking()
        if self.thinking is not None:
            if piece == shape.THINK_CLOSE:
                return self.close_thinking()
            self.thinking["text"] += piece
            return [self.sse("response.reasoning_summary_text.delta", **self._thought(), delta=piece)]
        return [
            *self.open_message(),
            self.sse("response.output_text.delta", **self._where(), delta=piece, logprobs=[]),
        ]

    def _thought(self) -> dict[str, Any]:
        assert self.thinking is not None
        return {"item_id": self.thinking["id"], "output_index": self.thinking["index"], "summary_index": 0}

    def open_thinking(self) -> list[dict[str, str]]:
        self.thinking = {"id": shape.item_id("rs", self.p.id, 0), "index": self.index(), "text": ""}
        item = shape.reasoning_item(self.thinking["id"], None, status="in_progress")
        return [
            self.sse("response.output_item.added", output_index=self.thinking["index"], item=item),
            self.sse(
                "response.reasoning_summary_part.added",
                **self._thought(),
                part={"type": "summary_text", "text": ""},
            ),
        ]

    def close_thinking(self) -> list[dict[str, str]]:
        where, text = self._thought(), self.thinking["text"] if self.thinking else ""
        item = shape.reasoning_item(where["item_id"], text)
        self.items[where["output_index"]] = item
        self.thinking = None
        return [
            self.sse("response.reasoning_summary_text.done", **where, text=text),
            self.sse("response.reasoning_summary_part.done", **where, part=item["summary"][0]),
            self.sse("response.output_item.done", output_index=where["output_index"], item=item),
        ]

    def _reused(self, sources: list[Source]) -> bool:
        """Whether every source came from the earlier turns (no search ran)."""
        prior = {(s.url, s.text) for s in self.p.prior_sources}
        return bool(prior) and all((s.url, s.text) in prior for s in sources)

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.message_id, "output_index": self.message_index, "content_index": 0}

    def open_message(self) -> list[dict[str, str]]:
        if self.message_index is not None:
            return []
        self.message_index = self.index()
        item = shape.message_item(self.message_id, [], "in_progress")
        return [
            self.sse("response.output_item.added", output_index=self.message_index, item=item),
            self.sse("response.content_part.added", **self._where(), part=shape.text_part("", [])),
        ]

    def output(self, message: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The items sent, in output order (with the finished message at its place)."""
        items = dict(self.items)
        if message is not None and self.message_index is not None:
            items[self.message_index] = message
        return [items[i] for i in sorted(items)]

    async def done(self, answer: Answer) -> list[dict[str, str]]:
        chat_usage, cost = self.service.price(self.p.plan, answer)
        body = shape.finished(self.p.base, answer, chat_usage, time.time())
        body.update(images_extra(self.p.plan, answer))
        message = body["output"][-1]
        part = message["content"][0]
        out = self.close_thinking() if self.thinking is not None else []
        out += self.open_message()
        body["output"] = self.output(message)  # the items as they were sent
        for i, note in enumerate(part["annotations"]):
            out.append(
                self.sse(
                    "response.output_text.annotation.added",
                    **self._where(),
                    annotation_index=i,
                    annotation=note,
                )
            )
        out += [
            self.sse("response.output_text.done", **self._where(), text=part["text"], logprobs=[]),
            self.sse("response.content_part.done", **self._where(), part=part),
            self.sse("response.output_item.done", output_index=self.message_index, item=message),
        ]
        await self.service.keep(self.p, answer, body)
        await self.finish(200, chat_usage, cost)
        kind = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
        out.append(self.sse(kind, response=body))
        return out

    def failed(self, error: APIError) -> list[dict[str, str]]:
        body = dict(self.p.base)
        body["status"] = "failed"
        body["error"] = {"code": error.code or "server_error", "message": error.message}
        body["output"] = self.output()
        return [
            self.sse("response.failed", response=body),
            self.sse("error", code=error.code, message=error.message, param=error.param, **error.body()),
        ]

    async def finish(
        self, status: int, chat_usage: dict[str, Any] | None = None, cost: Cost | None = None
    ) -> None:
        """Charge tokens and write the ledger row, once."""
        if self.recorded:
            return
        self.recorded = True
        if chat_usage is None:  # partial stream: bill what was generated
            chat_usage = streamed_usage(self.n_tokens, self.queries, self.p.plan.context_size)
        await self.service.record(self.p, status, chat_usage, cost)


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


async def _chain(head: list[Event], events: AsyncGenerator[Event, None]) -> AsyncIterator[Event]:
    """``head`` (already taken from ``events``), then the rest; closing this closes ``events``."""
    async with aclosing(events):
        for event in head:
            yield event
        async for event in events:
            yield event
