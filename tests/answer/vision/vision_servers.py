"""Loopback HTTP servers for the vision tests and benchmark: one that serves images (and things that
are not images), one that speaks the OpenAI chat-completions wire format as a vision model would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    content_type: str = "image/png"
    body: bytes = b""
    content_length: int | None = None  # None: the body's length; -1: no Content-Length header
    stall_s: float = 0.0  # sleep after the headers (a server that never finishes)


@dataclass
class ImageServer:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@contextmanager
def serve_images() -> Iterator[ImageServer]:
    state = ImageServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            length = route.content_length if route.content_length is not None else len(route.body)
            if length >= 0:  # -1: no Content-Length, the body ends when the connection closes
                self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                if route.stall_s:
                    self.wfile.write(route.body[:10])
                    self.wfile.flush()
                    time.sleep(route.stall_s)
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class VisionModelServer:
    """What the loopback vision model saw and how it should behave (``mode``: ok, error, slow, garbage)."""

    base_url: str  # ends in /v1
    api_key: str
    mode: str = "ok"
    requests: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def describe_image_uri(uri: str) -> str:
    """The caption the loopback model gives: what it could decode from the data: URI it was sent."""
    import base64
    import io

    from PIL import Image

    head, _, payload = uri.partition(",")
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    return f"A {image.format} picture, {image.width} by {image.height} pixels, sent as {head[5:]}."


@contextmanager
def serve_vision_model(api_key: str = "vision-key") -> Iterator[VisionModelServer]:
    """An HTTP server on 127.0.0.1 that speaks OpenAI's ``POST /v1/chat/completions`` (non-streaming) for
    a message with an ``image_url`` part, and answers with a caption derived from the image it decoded."""
    import json

    state = VisionModelServer(base_url="", api_key=api_key)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/chat/completions":
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            if self.headers.get("Authorization") != f"Bearer {state.api_key}":
                self._send(401, b'{"error": {"message": "invalid api key"}}')
                return
            body = json.loads(raw)
            state.requests.append(body)
            state.headers.append(dict(self.headers))
            if state.mode == "error":
                self._send(500, b'{"error": {"message": "the model crashed"}}')
                return
            if state.mode == "garbage":
                self._send(200, b"<html>hello</html>", "text/html")
                return
            if state.mode == "slow":
                time.sleep(5)
            parts = body["messages"][0]["content"]
            uri = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": describe_image_uri(uri)},
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112},
            }
            self._send(200, json.dumps(answer).encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
