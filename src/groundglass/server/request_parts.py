"""The parts the API's request bodies share: a chat message and its content parts (text, images),
``response_format`` and ``web_search_options`` with its ``user_location``. Chat
(:mod:`groundglass.server.schemas`) and the Responses API (:mod:`groundglass.server.responses_schemas`)
both read them.

``web_search_options.user_location`` takes Perplexity's flat shape (``country``, ``region``, ``city``,
``latitude``, ``longitude``) and OpenAI's (``{"type": "approximate", "approximate": {...}}``, which
adds ``timezone``); its keys are checked strictly, since an unknown one would be ignored. Where it
can be honoured is decided against the configured providers (:mod:`groundglass.server.location`).

Images come as OpenAI/Perplexity content parts, ``{"type": "image_url", "image_url": {"url": URL}}``;
their URLs are checked (http(s) or ``data:`` only) and decoded where they are used
(:mod:`groundglass.server.answering`, the vision layer).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from groundglass.answer.search.filters import Location

ContextSize = Literal["low", "medium", "high"]
Recency = Literal["hour", "day", "week", "month", "year"]
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def iso_country(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 country code, upper-cased; a ValueError (a 400) for anything else."""
    if value is not None and not _COUNTRY.match(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (like US or FR)")
    return value.upper() if value else value


class Body(BaseModel):
    """A request body: known fields checked, unknown ones accepted and ignored (clients send vendor
    extras)."""

    model_config = ConfigDict(extra="allow", strict=False)


class TextPart(Body):
    type: Literal["text"]
    text: str


class ImageURL(Body):
    """OpenAI's ``{"url": ..., "detail": ...}``: an http(s) URL or a ``data:image/...;base64,`` URI.
    ``detail`` is accepted and ignored (the extractors read the whole image)."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(Body):
    type: Literal["image_url"]
    image_url: ImageURL

    @model_validator(mode="before")
    @classmethod
    def _needs_url(cls, data: Any) -> Any:
        """One clear error for a part without a usable URL; a bare string URL is accepted too, as some
        clients send one."""
        if not isinstance(data, dict):
            return data
        value = data.get("image_url")
        if isinstance(value, str):
            value = {"url": value}
        url = value.get("url") if isinstance(value, dict) else None
        if not isinstance(url, str) or not url.strip():
            raise ValueError('an image_url part needs {"url": "https://..." or "data:image/png;base64,..."}')
        return {**data, "image_url": value}

    @property
    def url(self) -> str:
        return self.image_url.url


def _content_kind(value: Any) -> str:
    """Which form ``content`` takes, so that a bad part is reported alone (not beside "not a string")."""
    if value is None:
        return "none"
    return "str" if isinstance(value, str) else "list"


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]
# (the tags "str" and "list" are left out of the parameter names that errors report)
Content = Annotated[
    Annotated[str, Tag("str")] | Annotated[list[ContentPart], Tag("list")] | Annotated[None, Tag("none")],
    Discriminator(_content_kind),
]


class RequestMessage(Body):
    """One of a chat request's ``messages`` as sent (content parts, images, any role); the server turns
    these into the engine's :class:`~groundglass.answer.types.ChatMessage` once (``chat_input.turns``)."""

    # no "tool": tool results belong to function calling, which this server does not do (tools is refused)
    role: Literal["system", "user", "assistant", "developer"]
    content: Content = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    def has_images(self) -> bool:
        return bool(self.image_urls())

    def image_urls(self) -> list[str]:
        """The URLs of this message's ``image_url`` parts, in order."""
        if not isinstance(self.content, list):
            return []
        return [p.url for p in self.content if isinstance(p, ImagePart)]


class JSONSchemaSpec(Body):
    # "schema" shadows a BaseModel attribute, hence the alias.
    json_schema_: dict[str, Any] = Field(alias="schema")
    name: str | None = None
    strict: bool | None = None


class RegexSpec(Body):
    regex: str  # the pattern the whole answer must match (checked in groundglass.server.regex_format)


class ResponseFormat(Body):
    type: Literal["text", "json_schema", "regex"]
    json_schema: JSONSchemaSpec | None = None
    regex: RegexSpec | None = None

    @model_validator(mode="after")
    def _needs_schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs a json_schema object with a schema")
        if self.type == "regex" and self.regex is None:
            raise ValueError('response_format of type regex needs {"regex": {"regex": "PATTERN"}}')
        return self


class UserLocation(BaseModel):
    """Where the asker is; every part optional. Unknown keys are refused (they would be ignored)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["approximate"] | None = None  # OpenAI's shape: the parts are in ``approximate``
    country: str | None = None  # ISO 3166-1 alpha-2
    region: str | None = Field(None, min_length=1, max_length=100)
    city: str | None = Field(None, min_length=1, max_length=100)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    timezone: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        """OpenAI's ``{"type": "approximate", "approximate": {...}}`` as the flat shape."""
        if isinstance(data, dict) and isinstance(data.get("approximate"), dict):
            return {**{k: v for k, v in data.items() if k != "approximate"}, **data["approximate"]}
        return data

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return iso_country(value)

    @model_validator(mode="after")
    def _together(self) -> UserLocation:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give latitude and longitude together, or neither")
        return self

    def location(self) -> Location:
        return Location(
            country=self.country,
            region=self.region,
            city=self.city,
            latitude=self.latitude,
            longitude=self.longitude,
            timezone=self.timezone,
        )


class WebSearchOptions(Body):
    search_context_size: ContextSize | None = None
    user_location: UserLocation | None = None
