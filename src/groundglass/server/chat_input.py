"""What a chat request asks for, read off its body: the conversation, the images, the image filters,
whether it needs a search, its reasoning effort and the schema its answer must follow. Pure functions
of the request (no server state); a request that cannot be read is an :class:`APIError` naming the
field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from groundglass.answer.types import ChatMessage
from groundglass.errors import GroundglassError
from groundglass.server.errors import APIError
from groundglass.server.regex_format import regex_schema
from groundglass.server.schemas import SEARCH_TYPE_EFFORT
from groundglass.server.search_classifier import depth, needs_search

if TYPE_CHECKING:
    from groundglass.answer.search.images import ImageFilters
    from groundglass.answer.vision import ImageInput
    from groundglass.server.schemas import ChatRequest


class RequestTurn(Protocol):
    """A message as an API request carries it (chat's ``messages[]``, the Responses API's ``input``)."""

    @property
    def role(self) -> str: ...

    def text(self) -> str: ...


def turns(messages: Iterable[RequestTurn]) -> list[ChatMessage]:
    """A request's messages as the engine's conversation, built once here: their text only (images are
    read from the request separately), ``developer`` taken as ``system``, ``tool`` turns left out."""
    return [
        ChatMessage("system" if m.role == "developer" else m.role, m.text())
        for m in messages
        if m.role in ("system", "user", "assistant", "developer")
    ]


def images(body: ChatRequest) -> list[ImageInput]:
    """The images of the last user message (http(s) URLs or data: URIs, not yet fetched or decoded)."""
    for i, m in enumerate(body.messages):
        if m.role != "user" and m.has_images():
            raise APIError(
                400,
                f"messages[{i}] ({m.role}) has an image_url part: images are read only in user messages",
                code="invalid_image",
                param=f"messages.{i}.content",
            )
    last = max((i for i, m in enumerate(body.messages) if m.role == "user"), default=None)
    if last is None or not body.messages[last].has_images():
        return []
    from groundglass.answer.vision import ImageError, ImageInput  # OCR and classifier modules: imported late
    from groundglass.server.request_parts import ImagePart

    images = []
    for j, part in enumerate(body.messages[last].content or []):
        if not isinstance(part, ImagePart):
            continue
        try:
            images.append(ImageInput.from_api(part.url))
        except ImageError as exc:
            param = f"messages.{last}.content.{j}.image_url"
            raise APIError(400, str(exc), code=exc.code, param=param) from exc
    return images


def image_filters(body: ChatRequest, search: str) -> ImageFilters | None:
    """``return_images``' filters (None when no images are asked for). Images come from the web pages
    read, so a request that searches the local index, or image filters without ``return_images``,
    are refused."""
    from groundglass.answer.search.images import ImageFilters

    if not body.return_images:
        given = [n for n in ("image_domain_filter", "image_format_filter", "num_images") if getattr(body, n)]
        if given:
            raise APIError(
                400,
                f"{given[0]} shapes the images return_images asks for: set return_images to true, "
                "or leave it out",
                code="invalid_value",
                param=given[0],
            )
        return None
    if search != "web":
        raise APIError(
            400,
            "return_images returns the images of the web pages read, and this request searches the "
            'local index, whose documents keep no images: send "source": "web" (or use a model whose '
            "source is web), or leave return_images out",
            code="unsupported_parameter",
            param="return_images",
        )
    try:
        return ImageFilters.build(body.image_domain_filter, body.image_format_filter)
    except GroundglassError as exc:
        raise APIError(400, str(exc), code="invalid_value", param=exc.param) from exc


def question(body: ChatRequest) -> str:
    return next((m.text() for m in reversed(body.messages) if m.role == "user"), "")


def search_needed(body: ChatRequest) -> bool:
    """False when the classifier is on (``enable_search_classifier``, ``search_type: "auto"``) and says
    the request needs no sources: chit-chat, arithmetic, rewriting the text it gives."""
    if not (body.enable_search_classifier or body.search_type == "auto"):
        return True
    return needs_search(question(body)).search


def effort(body: ChatRequest) -> str | None:
    """The request's reasoning effort: its own, else its ``search_type``'s (``auto``: by the question)."""
    if body.reasoning_effort or not body.search_type:
        return body.reasoning_effort
    kind = depth(question(body)) if body.search_type == "auto" else body.search_type
    return SEARCH_TYPE_EFFORT[kind]


def response_schema(body: ChatRequest) -> dict[str, Any] | None:
    """The JSON schema the answer must follow (``response_format`` of type ``json_schema``, or ``regex``
    as a string schema: :mod:`groundglass.server.regex_format`), or None."""
    fmt = body.response_format
    if fmt is not None and fmt.type == "regex" and fmt.regex is not None:
        return regex_schema(fmt.regex.regex)
    if fmt is None or fmt.type != "json_schema" or fmt.json_schema is None:
        return None
    return fmt.json_schema.json_schema_
