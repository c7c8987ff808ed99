"""``POST /v1/responses`` (also ``/v1/agent``, Perplexity's name for it) and ``GET /v1/responses/{id}``:
OpenAI's Responses API over the answer engine. The work is :mod:`groundglass.server.responses_service`;
this module parses, calls it and shapes the HTTP reply (JSON, or server-sent events when
``"stream": true``). A client that disconnects stops the generation, as in chat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from groundglass.server.auth import Principal
from groundglass.server.disconnect import cancel_on_disconnect
from groundglass.server.errors import APIError
from groundglass.server.response_store import ResponseStore
from groundglass.server.responses_schemas import ResponsesRequest
from groundglass.server.responses_service import ENDPOINT, ResponsesService
from groundglass.server.state import caller, state
from groundglass.server.usage import new_request_id, record_refusal

router = APIRouter(tags=["responses"])
T = TypeVar("T")


def _service(request: Request) -> ResponsesService:
    st = state(request)
    return ResponsesService(st, ResponseStore(st.db))


@router.post("/v1/responses", summary="A cited answer in OpenAI's Responses shape (Perplexity's Agent API)")
@router.post("/v1/agent", summary="The same as /v1/responses (Perplexity's Agent API path)")
async def create_response(body: ResponsesRequest, request: Request, who: Principal = Depends(caller)) -> Any:
    st = state(request)
    service = _service(request)
    started = time.perf_counter()
    try:
        await st.limits.admit(who)
        prepared = await service.prepare(body, who)
    except APIError as exc:
        await record_refusal(
            st,
            who,
            exc,
            request_id=new_request_id(),
            model=body.model or (body.models[0] if body.models else ""),
            endpoint=ENDPOINT,
            started=started,
        )
        raise _in_responses_terms(exc, body) from None
    cancel = threading.Event()
    headers = {"x-request-id": prepared.id}
    try:
        if body.stream:
            events, head = await _until_disconnect(service.start(prepared, cancel), request, cancel)
            stream = service.stream(prepared, events, head, cancel)
            return EventSourceResponse(stream, ping=15, headers=headers)
        result = await _until_disconnect(service.complete(prepared, cancel), request, cancel)
    except APIError as exc:
        await service.record(prepared, exc.status)
        raise _in_responses_terms(exc, body) from None
    return JSONResponse(result, headers=headers)


@router.get("/v1/responses/{response_id}", summary="A stored response")
async def get_response(response_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    return await _service(request).load(who, response_id)


async def _until_disconnect(work: Awaitable[T], request: Request, cancel: threading.Event) -> T:
    """``work``'s result; ``cancel`` is set when the client goes away first (the engine then stops)."""
    async with cancel_on_disconnect(request, cancel):
        return await work


def _in_responses_terms(exc: APIError, body: ResponsesRequest) -> APIError:
    """``exc`` naming this API's field: the chat plan's ``messages`` (a bad image, a question too long)
    are this request's ``input``, its ``response_format`` is ``text.format`` when that gave the format
    (``response_format.regex.regex`` is ``text.format.regex``, the flat form)."""
    param = exc.param or ""
    head = param.split(".")[0]
    if head == "messages":
        exc.param = "input"
    elif head == "response_format" and body.response_format is None:
        exc.param = "text.format.regex" if param.startswith("response_format.regex") else "text.format"
    return exc
