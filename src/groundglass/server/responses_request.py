"""A Responses request read as a chat request, so that ``/v1/responses`` runs on the same plan as
``/chat/completions`` (the same presets, filters, effort and checks).

How the request maps onto a chat request: ``instructions`` is a system message for this response
only; ``previous_response_id`` puts the stored conversation before ``input`` and offers its sources
for reuse; ``preset`` / ``reasoning.effort`` is ``reasoning_effort``; ``max_output_tokens`` is
``max_tokens``; the ``web_search`` tool's filters are chat's filter fields (``allowed_domains`` joins
``search_domain_filter``) and its ``search_context_size`` is ``web_search_options``'. The tool searches
where the model searches (the local index on an offline install, else the web providers); ``tools: []``
answers without searching. A request left without a ``model`` uses ``sonar``. A regex ``text.format``
(or ``response_format``) is chat's ``response_format`` regex, and ``return_images`` with its filters are
chat's own fields.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from groundglass.answer.types import ChatMessage, Source
from groundglass.server import chat_input
from groundglass.server.errors import APIError
from groundglass.server.schemas import ChatRequest

if TYPE_CHECKING:
    from groundglass.server.answering import Plan
    from groundglass.server.auth import Principal
    from groundglass.server.responses_schemas import ResponsesRequest

DEFAULT_MODEL = "sonar"


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


def api_models(presets: Collection[str], body: ResponsesRequest) -> list[str]:
    """The models to try, in order: ``models``' names this server has (a 400 when it has none of
    them), else ``model``, else ``sonar`` (or the first preset)."""
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
    chat: dict[str, Any] = {"model": model, "messages": _chat_messages(body, earlier), "stream": body.stream}
    optional = {
        "max_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "reasoning_effort": body.effort(),
        "language_preference": body.language_preference,
    }
    chat.update({k: v for k, v in optional.items() if v is not None})
    chat.update(_format_fields(body))
    chat.update(_image_fields(body))
    if body.tools is not None and not body.tools:
        chat["disable_search"] = True
    chat.update(_search_tool_fields(body))
    try:
        return ChatRequest.model_validate(chat)
    except ValidationError as exc:  # the fields were checked as Responses fields: name the chat one
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ()))
        raise APIError(
            400, f"invalid value for '{param}': {first.get('msg')}", code="invalid_value", param=param or None
        ) from exc


def _chat_messages(body: ResponsesRequest, earlier: list[ChatMessage]) -> list[dict[str, Any]]:
    """The instructions (as a system message), the ``earlier`` turns, then ``input``, in chat's shape."""
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
    return messages


def _format_fields(body: ResponsesRequest) -> dict[str, Any]:
    """Chat's ``response_format`` for the request's JSON schema or regex (a regex wins)."""
    fields: dict[str, Any] = {}
    structured = body.json_schema()
    if structured is not None:
        name, schema, strict = structured
        spec: dict[str, Any] = {"schema": schema, "name": name, "strict": strict}
        spec = {k: v for k, v in spec.items() if v is not None}
        fields["response_format"] = {"type": "json_schema", "json_schema": spec}
    pattern = body.regex()
    if pattern is not None:
        fields["response_format"] = {"type": "regex", "regex": {"regex": pattern}}
    return fields


def _image_fields(body: ResponsesRequest) -> dict[str, Any]:
    """Chat's image fields, as given."""
    fields: dict[str, Any] = {"return_images": True} if body.return_images else {}
    images = {
        "image_domain_filter": body.image_domain_filter,
        "image_format_filter": body.image_format_filter,
        "num_images": body.num_images,
    }
    fields.update({k: v for k, v in images.items() if v is not None})
    return fields


def _search_tool_fields(body: ResponsesRequest) -> dict[str, Any]:
    """Chat's ``web_search_options`` and filter fields for the ``web_search`` tool (none without it)."""
    found = body.search_tool()
    tool = found[1] if found else None
    if tool is None:
        return {}
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if tool.search_context_size:
        options["search_context_size"] = tool.search_context_size
    if tool.user_location is not None:
        options["user_location"] = tool.user_location.model_dump(exclude_none=True)
    if options:
        fields["web_search_options"] = options
    if tool.filters is not None:
        f = tool.filters.model_dump(exclude_none=True)
        domains = [*f.pop("search_domain_filter", []), *f.pop("allowed_domains", [])]
        if domains:
            f["search_domain_filter"] = domains
        fields.update(f)
    return fields


def input_messages(body: ResponsesRequest) -> list[ChatMessage]:
    """This request's input as conversation turns (text only; ``developer`` is ``system``)."""
    return chat_input.turns(body.messages())
