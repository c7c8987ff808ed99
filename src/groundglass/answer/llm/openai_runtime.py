"""Any OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp's server, OpenAI itself) over httpx.

Streams ``POST {base_url}/chat/completions`` with ``stream: true`` and reads the server-sent events.
The SSE framing is parsed here by hand (a ``data:`` line per event, ``[DONE]`` at the end) rather than
through the ``openai`` SDK: it is a dozen lines, it keeps the SDK out of the runtime's dependencies,
and it lets every failure (connection refused, HTML error pages, half-JSON) become a
:class:`ModelError` that names what came back.

:meth:`OpenAICompatibleLLM.complete_json` asks for ``response_format: json_schema`` (strict); a server
that refuses it (an HTTP error naming the format or the schema) is asked again with
``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server), then ``json_object``, then
plain text, the schema written into the prompt from the second step on. The first mode the endpoint
accepts is remembered. Whatever comes back is parsed and validated (``structured``).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from groundglass.answer.llm import structured
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.errors import ModelError

FIX_ENDPOINT = "start the server or fix --model"
# response_format variants for complete_json, most to least constrained
JSON_MODES = ("json_schema", "json_object_schema", "json_object", "text")
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "strict")


def api_key_from(explicit: str | None) -> str | None:
    """The API key in effect: the setting, then $GROUNDGLASS_LLM_API_KEY, then $OPENAI_API_KEY."""
    return explicit or os.environ.get("GROUNDGLASS_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text under BPE tokenizers; never zero for non-empty text."""
    return math.ceil(len(text) / 4) if text else 0


def _snippet(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OpenAICompatibleLLM:
    """An :class:`~groundglass.answer.llm.base.LLM` that talks to ``base_url`` over HTTP."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        context_length: int = 4096,
    ) -> None:
        self.name = model
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.context_length = context_length
        self.timeout_s = timeout_s
        self._api_key = api_key_from(api_key)
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        )
        self._send_stream_options = True

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def close(self) -> None:
        self._client.close()

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    # -----------------------------------------------------------------------------------------------------

    def _body(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        top_p: float | None,
        stop: list[str] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if top_p is not None:
            body["top_p"] = top_p
        if stop:
            body["stop"] = stop
        if self._send_stream_options:
            body["stream_options"] = {"include_usage": True}
        return body

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.2,
        top_p: float | None = None,
        stop: list[str] | None = None,
        completion: Completion | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        completion = completion if completion is not None else Completion()
        text_parts: list[str] = []
        usage: dict[str, Any] | None = None
        try:
            for event in self._events(messages, max_tokens, temperature, top_p, stop):
                if cancel is not None and cancel.is_set():
                    completion.finish_reason = "cancelled"
                    break  # leaving the iterator closes the HTTP stream, which stops the endpoint
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or choice.get("message") or {}
                    piece = delta.get("content") if isinstance(delta, dict) else None
                    if piece is None and isinstance(choice.get("text"), str):
                        piece = choice["text"]
                    if piece:
                        text_parts.append(piece)
                        yield piece
                    if choice.get("finish_reason"):
                        completion.finish_reason = choice["finish_reason"]
        finally:
            prompt_text = "\n".join(m.content for m in messages)
            # Without usage from the server: estimate (message framing costs a few tokens each).
            usage = usage or {}
            completion.prompt_tokens = int(usage.get("prompt_tokens") or 0) or estimate_tokens(
                prompt_text
            ) + 4 * len(messages)
            completion.completion_tokens = int(usage.get("completion_tokens") or 0) or estimate_tokens(
                "".join(text_parts)
            )
            details = usage.get("prompt_tokens_details")
            if isinstance(details, dict):  # OpenAI and llama.cpp's server report their prompt cache here
                completion.cached_tokens = int(details.get("cached_tokens") or 0)

    def _events(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        top_p: float | None,
        stop: list[str] | None,
    ) -> Iterator[dict[str, Any]]:
        """The JSON objects the endpoint streams back (or its one JSON reply when it ignores streaming)."""
        body = self._body(messages, max_tokens, temperature, top_p, stop)
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    detail = _snippet(response.read().decode("utf-8", "replace"))
                    if (
                        response.status_code in (400, 422)
                        and "stream_options" in detail
                        and self._send_stream_options
                    ):
                        self._send_stream_options = False  # an older server: retry without it
                        retry = True
                    else:
                        raise self._http_error(response.status_code, detail)
                else:
                    retry = False
                    content_type = response.headers.get("content-type", "")
                    if "text/event-stream" in content_type:
                        yield from self._sse(response)
                    else:
                        yield self._whole_json(response.read().decode("utf-8", "replace"))
        except httpx.ConnectError as exc:
            raise ModelError(f"cannot reach the model endpoint at {self.url}: {exc}", FIX_ENDPOINT) from exc
        except httpx.TimeoutException as exc:
            raise ModelError(
                f"the model endpoint at {self.url} did not answer within {self.timeout_s:g} s",
                "raise llm.timeout_s, use a smaller model, or check the server",
            ) from exc
        except httpx.HTTPError as exc:
            raise ModelError(
                f"the model endpoint at {self.url} failed: {type(exc).__name__}: {exc}", FIX_ENDPOINT
            ) from exc
        if retry:
            yield from self._events(messages, max_tokens, temperature, top_p, stop)

    def _http_error(self, status: int, detail: str) -> ModelError:
        if status in (401, 403):
            return ModelError(
                f"the model endpoint at {self.url} refused the request (HTTP {status}): {detail}",
                "set llm.api_key, $GROUNDGLASS_LLM_API_KEY or $OPENAI_API_KEY",
            )
        if status == 404:
            return ModelError(
                f"the model endpoint at {self.url} answered HTTP 404 (unknown model "
                f"{self.model!r} or wrong base URL): {detail}",
                "check the model name and that the base URL ends in /v1",
            )
        return ModelError(f"the model endpoint at {self.url} answered HTTP {status}: {detail}", FIX_ENDPOINT)

    def _garbage(self, what: str) -> ModelError:
        return ModelError(
            f"the model endpoint at {self.url} returned something that is not an "
            f"OpenAI-compatible chat response: {_snippet(what)!r}",
            "check that the URL points to an OpenAI-compatible API (usually ending in /v1)",
        )

    def _whole_json(self, text: str) -> dict[str, Any]:
        try:
            data = json.loads(text)
        except ValueError:
            raise self._garbage(text or "(empty body)") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            if isinstance(data, dict) and "error" in data:
                raise ModelError(
                    f"the model endpoint at {self.url} returned an error: "
                    f"{_snippet(json.dumps(data['error']))}",
                    FIX_ENDPOINT,
                )
            raise self._garbage(text)
        return data

    def _sse(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        saw_data = False
        for line in response.iter_lines():
            if not line or line.startswith(":"):
                continue  # event separator or SSE comment (keep-alive)
            field, _, value = line.partition(":")
            if field != "data":
                if field in ("event", "id", "retry"):
                    continue
                raise self._garbage(line)
            value = value.removeprefix(" ")
            if value.strip() == "[DONE]":
                return
            try:
                event = json.loads(value)
            except ValueError:
                raise self._garbage(value) from None
            if not isinstance(event, dict):
                raise self._garbage(value)
            if "error" in event and not event.get("choices"):
                raise ModelError(
                    f"the model endpoint at {self.url} returned an error: "
                    f"{_snippet(json.dumps(event['error']))}",
                    FIX_ENDPOINT,
                )
            saw_data = True
            yield event
        if not saw_data:
            raise self._garbage("(an event stream with no data)")

    # --- schema-constrained output --------------------------------------------------------------------

    def complete_json(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        completion: Completion | None = None,
    ) -> Any:
        """The reply as a JSON value that ``schema`` accepts (see the module docstring for the modes)."""
        structured.check_schema(schema)
        completion = completion if completion is not None else Completion()
        first = getattr(self, "_json_mode", 0)
        for i in range(first, len(JSON_MODES)):
            body = self._json_body(messages, schema, JSON_MODES[i], max_tokens, temperature)
            status, text = self._post(body)
            if status >= 400:
                # 400/422 from most servers; llama-cpp-python's server reports its validation errors as 500
                refused = status in (400, 422, 500) and any(w in text.lower() for w in _FORMAT_WORDS)
                if refused and i + 1 < len(JSON_MODES):
                    continue
                raise self._http_error(status, _snippet(text))
            self._json_mode = i
            data = self._whole_json(text)
            choice = (data.get("choices") or [{}])[0]
            message = choice.get("message") or {}
            content = message.get("content") if isinstance(message, dict) else None
            if content is None:
                content = choice.get("text") if isinstance(choice.get("text"), str) else ""
            completion.finish_reason = choice.get("finish_reason") or "stop"
            usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
            prompt_text = "\n".join(str(m.get("content") or "") for m in body["messages"])
            completion.prompt_tokens = int(usage.get("prompt_tokens") or 0) or estimate_tokens(
                prompt_text
            ) + 4 * len(messages)
            completion.completion_tokens = int(usage.get("completion_tokens") or 0) or estimate_tokens(
                content or ""
            )
            return structured.parse_json_output(
                content or "", schema, model=self.name, finish_reason=completion.finish_reason
            )
        raise AssertionError("unreachable: the last mode raises or returns")

    def _json_body(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any],
        mode: str,
        max_tokens: int,
        temperature: float,
    ) -> dict[str, Any]:
        wire = [{"role": m.role, "content": m.content} for m in messages]
        if mode != "json_schema" and wire:  # unconstrained or loosely constrained: say what is wanted
            instruction = structured.json_instruction(schema)
            wire[-1] = {**wire[-1], "content": f"{wire[-1]['content']}\n\n{instruction}"}
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        if mode == "json_schema":
            name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "response"))[:64]
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        elif mode == "json_object_schema":
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _post(self, body: dict[str, Any]) -> tuple[int, str]:
        """POST a non-streaming request: (HTTP status, body text); transport failures as ModelError."""
        try:
            response = self._client.post(self.url, json=body, headers={"Accept": "application/json"})
        except httpx.ConnectError as exc:
            raise ModelError(f"cannot reach the model endpoint at {self.url}: {exc}", FIX_ENDPOINT) from exc
        except httpx.TimeoutException as exc:
            raise ModelError(
                f"the model endpoint at {self.url} did not answer within {self.timeout_s:g} s",
                "raise llm.timeout_s, use a smaller model, or check the server",
            ) from exc
        except httpx.HTTPError as exc:
            raise ModelError(
                f"the model endpoint at {self.url} failed: {type(exc).__name__}: {exc}", FIX_ENDPOINT
            ) from exc
        return response.status_code, response.text
