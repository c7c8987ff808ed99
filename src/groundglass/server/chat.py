"""``POST /chat/completions`` (also under ``/v1``), and the answer presets ``GET /v1/models`` lists.

Non-streaming: one ``chat.completion`` object. Streaming (``"stream": true``): server-sent events in
OpenAI's ``chat.completion.chunk`` format::

    data: {image questions: visual_facts (text, labels, caption...) as soon as the images are read}
    data: {multi-step answers: reasoning_step (query, sources, partial answer, seconds) as each search ends}
    data: {search_results + citations as soon as retrieval is done}
    data: {one chunk per piece of text}
    data: {last chunk: finish_reason, citations, search_results, usage (with cost), attribution, declined
           [, visual_facts][, search_report (web)][, images][, related_questions][, reasoning]}
    data: [DONE]

The first chunk carries ``role: assistant`` and empty content. The response starts (its status line
is sent) with the engine's first event: a failure before it (every search provider down: 502
``search_failed``; a model endpoint refusing the prompt) is a plain HTTP error like the
non-streaming one. A failure later becomes ``event: error`` with an OpenAI-style error body
(both official SDKs raise it as an API error), then the stream ends. A client that disconnects
stops the generation (see :mod:`groundglass.server.answering`). Every request, finished, failed,
refused or abandoned, leaves one row in the ledger. Non-streaming answers carry a ``Server-Timing``
header: time queued for an engine slot, engine time, and the engine's steps (retrieve, first_token...).

``"stream_mode": "concise"`` (Perplexity's) sends only the answer's chunks and a last one whose
``object`` is ``chat.completion.done``: no visual_facts, reasoning_step or search_results chunks
before the text; everything they carry is in that last chunk.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from groundglass.answer.events import Done, ErrorEvent, Event, ImagesRead, SourcesFound, StepDone, Token
from groundglass.answer.response import attribution
from groundglass.log import get_logger
from groundglass.server.answer_service import complete, token_counter
from groundglass.server.answering import Plan, engine_failure
from groundglass.server.auth import Principal
from groundglass.server.completions import chunk, citation_tokens, images_extra, sources_extra, usage_block
from groundglass.server.disconnect import ClosingEventSource, cancel_on_disconnect
from groundglass.server.errors import APIError, error_body
from groundglass.server.schemas import ChatRequest
from groundglass.server.state import ServerState, caller, state
from groundglass.server.usage import Cost, new_request_id, record_refusal, streamed_usage, usage_entry

if TYPE_CHECKING:
    from groundglass.answer.types import Answer

router = APIRouter(tags=["chat"])
log = get_logger(__name__)


@router.post("/chat/completions", summary="Chat completion with citations (Perplexity-compatible)")
@router.post("/v1/chat/completions", summary="Chat completion with citations (OpenAI-compatible path)")
async def chat_completions(body: ChatRequest, request: Request, who: Principal = Depends(caller)) -> Any:
    st = state(request)
    started = time.perf_counter()
    request_id = new_request_id()
    endpoint = "/chat/completions"
    try:
        await st.limits.admit(who)
        plan = st.answerer.plan(body)
        if body.stream:
            cancel = threading.Event()
            stream = await st.answerer.start(plan, cancel)
            events = st.answerer.events(stream, cancel)
            first = await _first_event(events, cancel, request)
            bill = _StreamBill(st, plan, who, request_id, started)

            async def on_close() -> None:  # also when the stream never started (the client left first)
                cancel.set()
                with contextlib.suppress(RuntimeError):  # closed already, or still closing
                    await events.aclose()
                await bill.finish(499)  # no-op unless the client went away before the end

            return ClosingEventSource(
                _sse(st, plan, events, first, cancel, bill, concise=body.stream_mode == "concise"),
                on_close,
                ping=15,
                headers={"x-request-id": request_id},
            )
        timings: dict[str, float] = {}
        cancel = threading.Event()
        async with cancel_on_disconnect(request, cancel):
            result, usage, cost = await complete(st, plan, request_id, cancel=cancel, timings=timings)
    except APIError as exc:
        await record_refusal(
            st, who, exc, request_id=request_id, model=body.model, endpoint=endpoint, started=started
        )
        raise
    await st.limits.charge_tokens(who, usage["total_tokens"])
    await st.record(
        usage_entry(
            who,
            request_id=request_id,
            model=body.model,
            endpoint=endpoint,
            status=200,
            started=started,
            usage=usage,
            cost=cost,
        )
    )
    # Server-Timing: how long the request waited for an engine slot and how long the engine ran, so
    # clients (and bench_server) can tell the server's own overhead from the model's time.
    server_timing = ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in timings.items())
    return JSONResponse(result, headers={"x-request-id": request_id, "server-timing": server_timing})


async def _first_event(
    events: AsyncGenerator[Event, None], cancel: threading.Event, request: Request
) -> Event | None:
    """The engine's first event, before the response starts: a failure there (an ErrorEvent, or an
    APIError from the engine bridge) is raised as an APIError, so the client gets a real HTTP status.
    None when the engine ended without an event (the client went away)."""
    async with cancel_on_disconnect(request, cancel):
        try:
            first = await anext(events, None)
            if isinstance(first, ErrorEvent):
                raise engine_failure(first)
            return first
        except BaseException:
            await events.aclose()  # frees the engine slot
            raise


class _StreamBill:
    """The ledger row and token charge of one streamed answer, written once, before the client sees the
    end of the stream (or, when the client left early, for what was generated)."""

    def __init__(self, st: ServerState, plan: Plan, who: Principal, request_id: str, started: float) -> None:
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


def _final_extra(st: ServerState, plan: Plan, answer: Answer) -> tuple[dict[str, Any], dict[str, Any], Cost]:
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


async def _sse(
    st: ServerState,
    plan: Plan,
    events: AsyncGenerator[Event, None],
    first: Event | None,
    cancel: threading.Event,
    bill: _StreamBill,
    *,
    concise: bool = False,
) -> AsyncIterator[dict[str, str]]:
    """The engine's events as SSE chunks, in order, with the ledger row written before the last one.

    Kept as one loop (about 60 lines) so the order of chunks, billing and errors reads top to bottom."""
    created = int(time.time())
    model = plan.api_model
    request_id = bill.request_id
    role_sent = False

    def opening(delta: dict[str, Any]) -> dict[str, Any]:
        """The first chunk's delta says who speaks."""
        nonlocal role_sent
        if role_sent:
            return delta
        role_sent = True
        return {"role": "assistant", **delta}

    try:
        async with aclosing(_chain(first, events)) as stream:
            async for event in stream:
                if concise and isinstance(event, ImagesRead | StepDone | SourcesFound):
                    bill.queries = list(event.queries) if isinstance(event, SourcesFound) else bill.queries
                    continue  # concise: their content comes in the last chunk only
                if isinstance(event, ImagesRead):
                    delta = opening({"content": ""})
                    yield _data(chunk(request_id, created, model, delta, visual_facts=event.facts))
                elif isinstance(event, StepDone):  # a search of a multi-step answer, as it finishes
                    delta = opening({"content": ""})
                    yield _data(chunk(request_id, created, model, delta, reasoning_step=event.step))
                elif isinstance(event, SourcesFound):
                    bill.queries = list(event.queries)
                    delta = opening({"content": ""})
                    yield _data(chunk(request_id, created, model, delta, **sources_extra(event.sources)))
                elif isinstance(event, Token):
                    bill.n_tokens += 1
                    yield _data(chunk(request_id, created, model, opening({"content": event.text})))
                elif isinstance(event, Done):
                    extra, usage, cost = _final_extra(st, plan, event.answer)
                    await bill.finish(200, usage, cost)
                    last = chunk(request_id, created, model, opening({}), event.answer.finish_reason, **extra)
                    if concise:
                        last["object"] = "chat.completion.done"
                    yield _data(last)
                elif isinstance(event, ErrorEvent):
                    failure = engine_failure(event)
                    await bill.finish(failure.status)
                    yield {"event": "error", "data": json.dumps(failure.body())}
                    return
        yield {"data": "[DONE]"}
    except APIError as exc:  # raised by the engine bridge mid-stream
        await bill.finish(exc.status)
        yield {"event": "error", "data": json.dumps(exc.body())}
    except Exception as exc:
        log.exception("stream_failed", request_id=request_id, error=repr(exc))
        await bill.finish(500)
        body = error_body(f"internal error ({type(exc).__name__})", type="api_error", code="internal_error")
        yield {"event": "error", "data": json.dumps(body)}
    finally:
        cancel.set()
        with anyio.CancelScope(shield=True):
            await bill.finish(499)  # no-op unless the client went away before the end


async def _chain(first: Event | None, events: AsyncGenerator[Event, None]) -> AsyncIterator[Event]:
    """``first`` (already taken from ``events``), then the rest; closing this closes ``events``."""
    async with aclosing(events):
        if first is not None:
            yield first
        async for event in events:
            yield event


def _data(obj: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(obj, ensure_ascii=False)}


# The /v1/models routes are fine-tuning's (groundglass.server.finetune.api): they list these answer
# presets, then the image models, so each path has one operation.
async def list_models(request: Request, who: Principal) -> dict[str, Any]:
    """The answer presets as OpenAI model objects."""
    st = state(request)
    created = int(st.started_at)
    data = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "groundglass",
            "description": p.description,
            "llm": p.llm or st.settings.llm.model,
            "source": p.source,
            "search": p.source,  # source's old name, kept for one release
        }
        for name, p in sorted(st.answerer.presets().items())
    ]
    return {"object": "list", "data": data}


async def get_model(model: str, request: Request, who: Principal) -> dict[str, Any]:
    """One answer preset as an OpenAI model object; 404 when there is none of that name."""
    st = state(request)
    p = st.answerer.presets().get(model)
    if p is None:
        raise APIError(404, f"the model '{model}' does not exist", code="model_not_found", param="model")
    return {
        "id": model,
        "object": "model",
        "created": int(st.started_at),
        "owned_by": "groundglass",
        "description": p.description,
        "llm": p.llm or st.settings.llm.model,
        "source": p.source,
        "search": p.source,  # source's old name, kept for one release
    }
