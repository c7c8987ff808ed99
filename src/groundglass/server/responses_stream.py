"""The Responses stream: a prepared request's engine events written as the server-sent events OpenAI's
SDK reads, each with its ``sequence_number``, and its one ledger row when the stream ends.

The order: ``response.created``, ``response.in_progress``;
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
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from groundglass.answer.events import Done, ErrorEvent, Event, SourcesFound, StepDone, Token
from groundglass.answer.types import Answer, Source
from groundglass.log import get_logger
from groundglass.server import responses_body as shape
from groundglass.server.answering import engine_failure
from groundglass.server.completions import images_extra
from groundglass.server.errors import APIError
from groundglass.server.usage import streamed_usage

if TYPE_CHECKING:
    from groundglass.server.answering import Plan
    from groundglass.server.responses_request import Prepared
    from groundglass.server.usage import Cost

log = get_logger(__name__)


class Accounts(Protocol):
    """What a stream needs of the service when the answer is done: its price, keeping it for a later
    ``previous_response_id``, and the ledger row."""

    def price(self, plan: Plan, answer: Answer) -> tuple[dict[str, Any], Cost]: ...

    async def keep(self, p: Prepared, answer: Answer, body: dict[str, Any]) -> None: ...

    async def record(
        self, p: Prepared, status: int, chat_usage: dict[str, Any] | None = None, cost: Cost | None = None
    ) -> None: ...


async def stream(
    service: Accounts,
    p: Prepared,
    events: AsyncGenerator[Event, None],
    head: list[Event],
    cancel: threading.Event,
) -> AsyncIterator[dict[str, str]]:
    """Server-sent events ({"event", "data"}) in the order OpenAI's Responses stream has them."""
    run = StreamRun(service, p)
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


class StreamRun:
    """One streamed response: its sequence numbers, the output items sent so far (each with its output
    index, in the order they were added), and its one ledger row."""

    def __init__(self, service: Accounts, p: Prepared) -> None:
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


async def _chain(head: list[Event], events: AsyncGenerator[Event, None]) -> AsyncIterator[Event]:
    """``head`` (already taken from ``events``), then the rest; closing this closes ``events``."""
    async with aclosing(events):
        for event in head:
            yield event
        async for event in events:
            yield event
