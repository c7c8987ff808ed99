"""Stop the work of a request whose client went away: watch the connection, set a cancel event.

:class:`ClosingEventSource` is the streaming half: a stream's generator only runs its ``finally`` if it
was started, and a client that leaves between the response being returned and its first chunk never
starts it; so the response itself runs ``on_close`` once it is done, however it ended.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.types import Receive, Scope, Send


@asynccontextmanager
async def cancel_on_disconnect(request: Request, cancel: threading.Event) -> AsyncIterator[None]:
    """While the block runs, set ``cancel`` as soon as the client disconnects."""
    watcher = asyncio.create_task(_watch(request, cancel))
    try:
        yield
    finally:
        watcher.cancel()
        with suppress(asyncio.CancelledError):
            await watcher


async def _watch(request: Request, cancel: threading.Event) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
            return


class ClosingEventSource(EventSourceResponse):
    """An SSE response that awaits ``on_close`` when it ends: finished, failed or abandoned."""

    def __init__(self, content: Any, on_close: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()
