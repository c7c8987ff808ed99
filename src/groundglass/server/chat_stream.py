"""A streamed chat completion: the engine's events as OpenAI's ``chat.completion.chunk`` server-sent
events, in order, and the request's one ledger row, written before the client sees the end.

The chunks: for image questions ``visual_facts`` as soon as the images are read; for multi-step
answers a ``reasoning_step`` as each search ends; ``search_results`` and ``citations`` as soon as
retrieval is done; one chunk per piece of text; a last chunk with everything the answer adds
(:func:`final_extra`); then ``[DONE]``. The first chunk carries ``role: assistant``. ``concise``
(Perplexity's ``stream_mode``) sends only the text and a last chunk whose ``object`` is
``chat.completion.done``. A failure mid-stream is an ``event: error`` with an OpenAI-style body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from groundglass.answer.events import Done, ErrorEvent, Event, ImagesRead, SourcesFound, StepDone, Token
from groundglass.answer.response import attribution
from groundglass.log import get_logger
from groundglass.server.answer_service import AnswerContext, token_counter
from groundglass.server.answering import engine_failure
from groundglass.server.completions import chunk, citation_tokens, images_extra, sources_extra, usage_block
from groundglass.server.errors import APIError, error_body
from groundglass.server.usage import streamed_usage, usage_entry

if TYPE_CHECKING:
    from groundglass.answer.types import Answer
    from groundglass.server.answering import Plan
    from groundglass.server.auth import Principal
    from groundglass.server.limits import RateLimits
    from groundglass.server.usage import Cost

log = get_logger(__name__)


class StreamContext(AnswerContext, Protocol):
    """What a stream needs of the server (the server's state provides it)."""

    limits: RateLimits

    async def record(self, entry: object) -> None:
        """Write one ledger row."""
        ...


class StreamBill:
    """The ledger row and token charge of one streamed answer, written once, before the client sees the
    end of the stream (or, when the client left early, for what was generated)."""

    def __init__(
        self, st: StreamContext, plan: Plan, who: Principal, request_id: str, started: float
    ) -> None:
        self.st, self.plan, self.who, self.request_id, self.started = st, plan, who, request_id, started
        self.n_tokens = 0
        self.queries: list[str] = []
        self.recorded = False

    async def finish(
        self, status: int, usage: dict[str, Any] | None = None, cost: Cost | None = None
    ) -> None:
        if self.recorded:
            return
        self.recorded = True
        if usage is None:  # partial stream: bill what was generated
            usage = streamed_usage(self.n_tokens, self.queries, self.plan.context_size)
        if usage is not None:
            tokens = int(usage.get("total_tokens") or usage["completion_tokens"])
            await self.st.limits.charge_tokens(self.who, tokens)
        await self.st.record(
            usage_entry(
                self.who,
                request_id=self.request_id,
                model=self.plan.api_model,
                endpoint="/chat/completions",
                status=status,
                started=self.started,
                usage=usage,
                cost=cost,
            )
        )


def final_extra(st: AnswerContext, plan: Plan, answer: Answer) -> tuple[dict[str, Any], dict[str, Any], Cost]:
    """The last chunk's additions (sources, usage, attribution...), its usage block and its cost."""
    cites = citation_tokens(answer, token_counter(st.answerer, plan))
    searched = answer.usage.num_search_queries
    usage, cost = usage_block(st.pricing, plan, answer, searched, cites)
    extra: dict[str, Any] = {
        **sources_extra(answer.sources),
        "usage": usage,
        "attribution": attribution(answer),
        "declined": answer.declined,
    }
    if answer.visual_facts:
        extra["visual_facts"] = answer.visual_facts
    extra.update(images_extra(plan, answer))  # images (when asked for) and the search report
    if plan.related_questions:
        extra["related_questions"] = answer.related_questions
    if answer.reasoning is not None:
        extra["reasoning"] = answer.reasoning
    st.metrics.tokens.labels("prompt").inc(answer.usage.prompt_tokens)
    st.metrics.tokens.labels("completion").inc(answer.usage.completion_tokens)
    return extra, usage, cost


async def sse(
    st: StreamContext,
    plan: Plan,
    events: AsyncGenerator[Event, None],
    first: Event | None,
    cancel: threading.Event,
    bill: StreamBill,
    *,
    concise: bool = False,
) -> AsyncIterator[dict[str, str]]:
    """The engine's events as SSE chunks, in order, with the ledger row written before the last one."""
    out = _Chunks(bill.request_id, plan.api_model)
    try:
        async with aclosing(_chain(first, events)) as stream:
            async for event in stream:
                if isinstance(event, ErrorEvent):
                    failure = engine_failure(event)
                    await bill.finish(failure.status)
                    yield {"event": "error", "data": json.dumps(failure.body())}
                    return
                if isinstance(event, Done):
                    extra, usage, cost = final_extra(st, plan, event.answer)
                    await bill.finish(200, usage, cost)
                    yield _data(out.last(event.answer, extra, concise=concise))
                elif (piece := out.on(event, bill, concise=concise)) is not None:
                    yield _data(piece)
        yield {"data": "[DONE]"}
    except APIError as exc:  # raised by the engine bridge mid-stream
        await bill.finish(exc.status)
        yield {"event": "error", "data": json.dumps(exc.body())}
    except Exception as exc:
        log.exception("stream_failed", request_id=bill.request_id, error=repr(exc))
        await bill.finish(500)
        body = error_body(f"internal error ({type(exc).__name__})", type="api_error", code="internal_error")
        yield {"event": "error", "data": json.dumps(body)}
    finally:
        cancel.set()
        with anyio.CancelScope(shield=True):
            await bill.finish(499)  # no-op unless the client went away before the end


class _Chunks:
    """The chunks of one stream: its id, creation time and model, and whether the role was sent."""

    def __init__(self, request_id: str, model: str) -> None:
        self.request_id = request_id
        self.created = int(time.time())
        self.model = model
        self.role_sent = False

    def opening(self, delta: dict[str, Any]) -> dict[str, Any]:
        """The first chunk's delta says who speaks."""
        if self.role_sent:
            return delta
        self.role_sent = True
        return {"role": "assistant", **delta}

    def on(self, event: Event, bill: StreamBill, *, concise: bool) -> dict[str, Any] | None:
        """The chunk for an event before the answer's end (None: nothing to send); ``bill`` counts the
        queries and tokens, for a stream that stops early."""
        if concise and isinstance(event, ImagesRead | StepDone | SourcesFound):
            bill.queries = list(event.queries) if isinstance(event, SourcesFound) else bill.queries
            return None  # concise: their content comes in the last chunk only
        if isinstance(event, ImagesRead):
            delta = self.opening({"content": ""})
            return chunk(self.request_id, self.created, self.model, delta, visual_facts=event.facts)
        if isinstance(event, StepDone):  # a search of a multi-step answer, as it finishes
            delta = self.opening({"content": ""})
            return chunk(self.request_id, self.created, self.model, delta, reasoning_step=event.step)
        if isinstance(event, SourcesFound):
            bill.queries = list(event.queries)
            delta = self.opening({"content": ""})
            return chunk(self.request_id, self.created, self.model, delta, **sources_extra(event.sources))
        if isinstance(event, Token):
            bill.n_tokens += 1
            return chunk(self.request_id, self.created, self.model, self.opening({"content": event.text}))
        return None

    def last(self, answer: Answer, extra: dict[str, Any], *, concise: bool) -> dict[str, Any]:
        """The last chunk: the finish reason and everything the answer adds."""
        delta = self.opening({})
        last = chunk(self.request_id, self.created, self.model, delta, answer.finish_reason, **extra)
        if concise:
            last["object"] = "chat.completion.done"
        return last


async def _chain(first: Event | None, events: AsyncGenerator[Event, None]) -> AsyncIterator[Event]:
    """``first`` (already taken from ``events``), then the rest; closing this closes ``events``."""
    async with aclosing(events):
        if first is not None:
            yield first
        async for event in events:
            yield event


def _data(obj: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(obj, ensure_ascii=False)}
