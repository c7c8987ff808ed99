"""Request bodies of the API, as pydantic models: Perplexity's chat and search fields, OpenAI's batches.

Known fields are checked strictly (type, range, allowed values), so a bad value is a 400 naming the
parameter. Fields this server does not know are accepted and ignored, as OpenAI-compatible servers
do, because clients send vendor extras (``user``, ``seed``, ``stream_options``...). Perplexity's own
fields that this server cannot honour in a request are refused with a 400 naming them (``user_location``
or ``return_images`` for a request that searches the local index): a client that asks for them is
told, not silently given less.

Perplexity's top-level ``country``, ``latitude`` and ``longitude`` are parts of
``web_search_options.user_location`` too, merged into it (``_perplexity_aliases``), and
``updated_after_timestamp`` / ``updated_before_timestamp`` (Unix seconds) become the last_updated
filters of the UTC day they fall on, so the server reads one field for each; errors still name the
field the client sent.

Perplexity's chat and search fields that this server does not implement (``frequency_penalty``,
``language_preference``, function ``tools``...) are declared so that they are not silently dropped as
extras: the value that changes nothing (``0``, ``false``, ``[]``; some clients always send it) passes,
any other is a 400 naming the field and what to use instead (:data:`UNSUPPORTED_CHAT`,
:data:`UNSUPPORTED_SEARCH`).

Date filters use Perplexity's format, ``%m/%d/%Y`` (``3/1/2025``); ``YYYY-MM-DD`` is accepted too.
Their values are checked where they are used, by the search layer's filters (one implementation).

The parts these bodies share with the Responses API (messages, content parts, ``response_format``,
``user_location``) are in :mod:`groundglass.server.request_parts`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from groundglass.log import get_logger
from groundglass.server.request_parts import (
    Body,
    Recency,
    RequestMessage,
    ResponseFormat,
    UserLocation,
    WebSearchOptions,
    iso_country,
)

log = get_logger(__name__)
SEARCH_TYPE_EFFORT = {"fast": "minimal", "pro": "medium"}  # Perplexity's search types as reasoning efforts


MAX_NUM_IMAGES = 50
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z: later is not a date (milliseconds, say)
LOCATION_PARTS = ("country", "latitude", "longitude")  # Perplexity's top-level ones
UPDATED_TIMESTAMPS = {
    "updated_after_timestamp": "last_updated_after_filter",
    "updated_before_timestamp": "last_updated_before_filter",
}


def timestamp_day(seconds: int) -> date:
    """The UTC day of a Unix timestamp: the last_updated filters bound days, so a timestamp bounds the
    day it falls on (a page changed earlier that day passes an ``updated_after_timestamp``)."""
    return datetime.fromtimestamp(seconds, tz=UTC).date()


def _sent_location_part(info: ValidationInfo, part: str) -> Any:
    options = info.data.get("web_search_options")
    where = options.user_location if options is not None else None
    return getattr(where, part) if where is not None else None


def _agrees_with_location(name: str, value: Any, info: ValidationInfo) -> Any:
    """A top-level location part, unless ``web_search_options.user_location`` says otherwise."""
    sent = _sent_location_part(info, name)
    if value is not None and sent is not None and sent != value:
        raise ValueError(
            f"{name} is {value!r} and web_search_options.user_location.{name} is {sent!r}: "
            "give the location once (web_search_options.user_location is the documented place)"
        )
    return value


LEAVE_OUT = "leave it out"
# Perplexity's chat fields this server does not implement: name -> (values that change nothing, what to
# do instead). A field left out of this table and of ChatRequest would be an ignored extra.
UNSUPPORTED_CHAT: dict[str, tuple[tuple[Any, ...], str]] = {
    "frequency_penalty": ((0, 0.0), f"{LEAVE_OUT} (or 0): the local models sample without penalties"),
    "presence_penalty": ((0, 0.0), f"{LEAVE_OUT} (or 0): the local models sample without penalties"),
    "best_of": ((1,), f"{LEAVE_OUT} (or 1): one answer is written per request"),
    "logprobs": ((False,), f"{LEAVE_OUT} (or false): answers carry no log probabilities"),
    "top_logprobs": ((0,), f"{LEAVE_OUT}: answers carry no log probabilities"),
    "tools": (([],), f"{LEAVE_OUT}: there is no function calling; the search is built in"),
    "tool_choice": (("none", "auto"), f"{LEAVE_OUT}: there is no function calling"),
    "parallel_tool_calls": ((False, True), LEAVE_OUT),  # meaningless without tools, so either passes
    "num_search_results": ((), "use web_search_options.search_context_size (low, medium, high) or top_k"),
    # in Perplexity's SDK but not in its documentation: refused all the same, since each asks for
    # something (threads, tenants, workspaces, rankers, token statistics) that does not exist here
    "cum_logprobs": ((False,), LEAVE_OUT),
    "diverse_first_token": ((False,), LEAVE_OUT),
    "file_workspace_id": ((), LEAVE_OUT),
    "has_image_url": ((False, True), LEAVE_OUT),  # describes the messages, which are read either way
    "ranking_model": ((), LEAVE_OUT),
    "response_formatting_locale": ((), LEAVE_OUT),
    "response_metadata": (({},), LEAVE_OUT),
    "search_internal_properties": (({},), LEAVE_OUT),
    "search_tenant": ((), LEAVE_OUT),
    "thread_id": ((), f"{LEAVE_OUT}: send the conversation as messages (or use /v1/threads)"),
    "use_threads": ((False,), f"{LEAVE_OUT}: send the conversation as messages"),
    "user_original_query": ((), LEAVE_OUT),
}
# the same for POST /search
UNSUPPORTED_SEARCH: dict[str, tuple[tuple[Any, ...], str]] = {
    "search_type": (("web",), 'leave it out (or "web"): there is no people search'),
    "search_context_size": ((), "use max_tokens_per_page and max_tokens"),
}


def language_name(code: str) -> str | None:
    """``"fr"`` -> ``"French"`` (CLDR's English names, through babel); None for an unknown code."""
    from babel import Locale

    name: str | None = Locale("en").languages.get(code.lower())
    return name


def refuse_unsupported(name: str, value: Any, table: dict[str, tuple[tuple[Any, ...], str]]) -> Any:
    """``value`` when it changes nothing (None or the field's neutral values), else the refusal."""
    neutral, fix = table[name]
    if value is None or any(value == n and type(value) is type(n) for n in neutral):
        return value
    raise PydanticCustomError(
        "unsupported_parameter",
        "{name} is not supported by this server, so it refuses it rather than ignore it: {fix}",
        {"name": name, "fix": fix},
    )


class FilterFields(Body):
    """The search filters /search and chat share. Their values (domains, dates, order) are checked by
    the search layer's :class:`~groundglass.answer.search.filters.SearchFilters` (see ``filters.py``)."""

    search_domain_filter: list[str] | None = None
    search_recency_filter: Recency | None = None
    search_after_date_filter: str | None = None
    search_before_date_filter: str | None = None
    last_updated_after_filter: str | None = None
    last_updated_before_filter: str | None = None
    search_language_filter: list[str] | None = None  # ISO 639-1 codes; web searches (not the index)


class ChatRequest(FilterFields):
    """POST /chat/completions: Perplexity's fields (OpenAI's are a subset)."""

    model: str = Field(min_length=1)
    messages: list[RequestMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=32768)
    temperature: float | None = Field(None, ge=0, lt=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1)
    response_format: ResponseFormat | None = None
    # narrows the sources to server.search_modes[mode]'s domains (groundglass.server.search_modes)
    search_mode: Literal["web", "academic", "sec"] | None = None
    return_related_questions: bool = False
    # the images of the web pages read (groundglass.answer.search.images), filtered by domain and format
    return_images: bool = False
    image_domain_filter: list[str] | None = None
    image_format_filter: list[str] | None = None
    disable_search: bool = False
    # skip the search for requests that need no sources (chit-chat, arithmetic, rewriting given text)
    enable_search_classifier: bool = False
    # fast: one search (effort minimal); pro: a multi-step plan (medium); auto: the classifier decides
    # whether to search, and a question that asks several things gets pro
    search_type: Literal["fast", "pro", "auto"] | None = None
    # concise: only the answer's chunks and a last chat.completion.done chunk with everything else
    stream_mode: Literal["full", "concise"] = "full"
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    web_search_options: WebSearchOptions | None = None
    top_k: int | None = Field(None, ge=1, le=100)
    # groundglass: where the sources come from instead of the model preset's: "index" (the local index
    # named by ``index``, or the preset's) or "web"; the names of `groundglass ask --source/--index`.
    # Its old name ``search`` is read for one release (_old_search).
    source: Literal["index", "web"] | None = None
    index: str | None = Field(None, min_length=1, max_length=100)
    # ISO 639-1: the language of the answer, asked for in a system message (_language_as_instruction)
    language_preference: str | None = Field(None, min_length=2, max_length=3)
    # only providers that filter adult content out are asked (server.location.check_safe_search)
    safe_search: bool = False
    # the most images return_images gives (the first, best first); each search finds up to 10
    num_images: int | None = Field(None, ge=1, le=MAX_NUM_IMAGES)
    # Perplexity's top-level location, the same as web_search_options.user_location's parts (declared
    # after web_search_options so that their validators can compare the two)
    country: str | None = None
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180, validate_default=True)
    # Unix seconds: the day (UTC) they fall on, as last_updated_after_filter / _before_filter
    updated_after_timestamp: int | None = Field(None, ge=0)
    updated_before_timestamp: int | None = Field(None, ge=0)
    # Perplexity's fields not implemented here: their neutral value passes, any other is a 400
    frequency_penalty: Any = None
    presence_penalty: Any = None
    best_of: Any = None
    logprobs: Any = None
    top_logprobs: Any = None
    tools: Any = None
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    num_search_results: Any = None
    cum_logprobs: Any = None
    diverse_first_token: Any = None
    file_workspace_id: Any = None
    has_image_url: Any = None
    ranking_model: Any = None
    response_formatting_locale: Any = None
    response_metadata: Any = None
    search_internal_properties: Any = None
    search_tenant: Any = None
    thread_id: Any = None
    use_threads: Any = None
    user_original_query: Any = None
    # which field the location came in ("country"...): errors about it name what the client sent
    _location_from: str = PrivateAttr("web_search_options.user_location")

    @property
    def location_param(self) -> str:
        return self._location_from

    @field_validator(*UNSUPPORTED_CHAT)
    @classmethod
    def _unsupported(cls, value: Any, info: ValidationInfo) -> Any:
        return refuse_unsupported(str(info.field_name), value, UNSUPPORTED_CHAT)

    @field_validator("country")
    @classmethod
    def _top_country(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _agrees_with_location("country", iso_country(value), info)

    @field_validator("latitude")
    @classmethod
    def _top_latitude(cls, value: float | None, info: ValidationInfo) -> float | None:
        return _agrees_with_location("latitude", value, info)

    @field_validator("longitude")
    @classmethod
    def _top_longitude(cls, value: float | None, info: ValidationInfo) -> float | None:
        value = _agrees_with_location("longitude", value, info)  # validated when left out, too
        if "latitude" in info.data and (info.data["latitude"] is None) != (value is None):
            raise ValueError("give latitude and longitude together, or neither")
        has_country = info.data.get("country") or _sent_location_part(info, "country")
        if value is not None and not has_country:
            # Perplexity's rule for a location: coordinates come with the country they lie in
            raise ValueError("latitude and longitude need the country they lie in: add country (like US)")
        return value

    @field_validator("updated_after_timestamp", "updated_before_timestamp")
    @classmethod
    def _timestamp_day(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        name = str(info.field_name)
        if value > MAX_TIMESTAMP:
            raise ValueError(f"{value} is past the year 9999 in Unix seconds: send seconds, not milliseconds")
        twin = UPDATED_TIMESTAMPS[name]
        given = info.data.get(twin)
        if given is not None:
            from groundglass.answer.search.filters import parse_filter_date
            from groundglass.errors import GroundglassError

            try:
                day = parse_filter_date(given, twin)
            except GroundglassError:
                return value  # the filter's own check names it
            if day != timestamp_day(value):
                raise ValueError(
                    f"{name} is {twin} as Unix seconds, and the two give different days "
                    f"({timestamp_day(value)} and {given}): give one of the two"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _old_search(cls, data: Any) -> Any:
        """``search``, the old name of ``source``, read for one release (``source`` wins when both are
        sent): everywhere else ``search`` is the web search, so the field was renamed."""
        if isinstance(data, dict) and "search" in data:
            data = dict(data)
            data.setdefault("source", data.pop("search"))
            log.warning(
                "deprecated_field",
                field="search",
                fix="send source (index or web); search goes away in the next release",
            )
        return data

    @model_validator(mode="after")
    def _perplexity_aliases(self) -> ChatRequest:
        """The top-level location joins ``web_search_options.user_location`` and the timestamps become
        the last_updated filters, so the rest of the server reads one field for each."""
        top = {k: getattr(self, k) for k in LOCATION_PARTS}
        top = {k: v for k, v in top.items() if v is not None}
        if top:
            options = self.web_search_options or WebSearchOptions()
            where = options.user_location
            self._location_from = "web_search_options.user_location" if where is not None else next(iter(top))
            merged = {**(where.model_dump(exclude_none=True) if where is not None else {}), **top}
            options.user_location = UserLocation.model_validate(merged)
            self.web_search_options = options
        for name, twin in UPDATED_TIMESTAMPS.items():
            value = getattr(self, name)
            if value is not None and getattr(self, twin) is None:
                setattr(self, twin, timestamp_day(value).isoformat())
        return self

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError(f"at most 4 stop sequences, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _one_effort(self) -> ChatRequest:
        implied = SEARCH_TYPE_EFFORT.get(self.search_type or "")
        if implied and self.reasoning_effort and implied != self.reasoning_effort:
            raise ValueError(
                f"search_type {self.search_type!r} means reasoning effort {implied!r}, but "
                f"reasoning_effort is {self.reasoning_effort!r}: give one of the two"
            )
        return self

    @field_validator("messages")
    @classmethod
    def _last_is_user(cls, value: list[RequestMessage]) -> list[RequestMessage]:
        if not any(m.role == "user" and (m.text().strip() or m.has_images()) for m in value):
            raise ValueError("no user message with text or an image: the last user message is the question")
        return value

    @field_validator("language_preference")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        if value is not None and language_name(value) is None:
            raise ValueError(f"{value!r} is not an ISO 639-1 language code (like en, fr or de)")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _language_as_instruction(self) -> ChatRequest:
        """``language_preference`` as the system message that asks for it, after the caller's own (it
        joins the answer's system prompt, where "Answer in French" is honoured)."""
        if self.language_preference:
            language = language_name(self.language_preference)
            ask = RequestMessage(role="system", content=f"Answer in {language}.")
            at = next((i for i, m in enumerate(self.messages) if m.role not in ("system", "developer")), 0)
            self.messages = [*self.messages[:at], ask, *self.messages[at:]]
        return self

    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class AsyncChatRequest(Body):
    """POST /async/chat/completions."""

    request: ChatRequest
    idempotency_key: str | None = Field(None, max_length=200)


class SearchRequest(FilterFields):
    """POST /search: Perplexity's Search API."""

    query: str | list[str]
    max_results: int = Field(10, ge=1, le=20)
    max_tokens_per_page: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    country: str | None = None
    search_mode: Literal["web", "academic", "sec"] | None = None
    display_server_time: bool = False
    search_type: Any = None  # Perplexity's, not implemented: UNSUPPORTED_SEARCH
    search_context_size: Any = None

    @field_validator(*UNSUPPORTED_SEARCH)
    @classmethod
    def _unsupported(cls, value: Any, info: ValidationInfo) -> Any:
        return refuse_unsupported(str(info.field_name), value, UNSUPPORTED_SEARCH)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | list[str]) -> str | list[str]:
        queries = [value] if isinstance(value, str) else value
        if not queries:
            raise ValueError("give a query, or a list of 1 to 5 queries")
        if len(queries) > 5:
            raise ValueError(f"at most 5 queries in one request, got {len(queries)}")
        if any(not q.strip() for q in queries):
            raise ValueError("a query is empty")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return iso_country(value)

    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)


class BatchCreate(Body):
    """POST /v1/batches (OpenAI)."""

    input_file_id: str
    endpoint: Literal["/v1/chat/completions", "/chat/completions"]
    completion_window: Literal["24h"] = "24h"
    metadata: dict[str, str] | None = None
