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

The stream itself (its chunks and its ledger row) is :mod:`groundglass.server.chat_stream`.

``"stream_mode": "concise"`` (Perplexity's) sends only the answer's chunks and a last one whose
``object`` is ``chat.completion.done``: no visual_facts, reasoning_step or search_results chunks
before the text; everything they carry is in that last chunk.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from groundglass.answer.events import ErrorEvent, Event
from groundglass.server.answer_service import complete
from groundglass.server.answering import engine_failure
from groundglass.server.auth import Principal
from groundglass.server.chat_stream import StreamBill, sse
from groundglass.server.disconnect import ClosingEventSource, cancel_on_disconnect
from groundglass.server.errors import APIError
from groundglass.server.schemas import ChatRequest
from groundglass.server.state import caller, state
from groundglass.server.usage import new_request_id, record_refusal, usage_entry

router = APIRouter(tags=["chat"])


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
            bill = StreamBill(st, plan, who, request_id, started)

            async def on_close() -> None:  # also when the stream never started (the client left first)
                cancel.set()
                with contextlib.suppress(RuntimeError):  # closed already, or still closing
                    await events.aclose()
                await bill.finish(499)  # no-op unless the client went away before the end

            return ClosingEventSource(
                sse(st, plan, events, first, cancel, bill, concise=body.stream_mode == "concise"),
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
