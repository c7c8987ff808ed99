"""Refuse oversized request bodies with an OpenAI-style 413, before they are read into memory.

Hand-written because the body limits built into Starlette/FastAPI answer with a plain-text
"Content Too Large" that replaces any response the app tries to send, so API clients could not parse
it. This checks ``Content-Length`` up front and counts the bytes of bodies sent without one
(chunked). ``POST /v1/files`` has its own, larger limit (``server.max_file_bytes``).

The default ``server.max_body_bytes`` (70 MB) is sized for images in chat requests: one image of
``vision.max_image_bytes`` (50 MB, Perplexity's limit) as a base64 ``data:`` URI is 66.7 MB.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from groundglass.server.errors import error_body


class _BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTPExceptions through to the app's error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _message(limit))


def _message(limit: int) -> str:
    return (
        f"the request body is larger than this server's {limit:,}-byte limit; send a smaller body (an "
        "image sent as a base64 data: URI takes 4/3 of its size; a public http(s) URL takes none) or "
        "ask the operator to raise server.max_body_bytes"
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, max_file_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_file_bytes = max_file_bytes

    def limit_for(self, path: str) -> int:
        return self.max_file_bytes if path.rstrip("/") == "/v1/files" else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _reject(send, limit)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _reject(send, limit)


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps(error_body(_message(limit), code="request_too_large")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
