"""The request body of ``POST /v1/responses`` (and ``/v1/agent``): OpenAI's Responses shape, with
Perplexity's Agent API additions (``preset``, the web search tool's ``filters``).

Unlike the chat body, which accepts and ignores vendor extras as OpenAI-compatible servers do, every
model here forbids fields it does not know: a field this server cannot honour is a 400 naming it
(``unknown parameter 'tools.0.foo'``), never silently dropped. What is accepted:

- ``input``: a string, or message items (``{"role", "content"}``, ``type: "message"`` optional) whose
  content is a string or ``input_text`` / ``input_image`` / ``output_text`` parts (the last so that a
  client can pass earlier output items back in);
- ``model`` (an API model name, ``sonar`` by default), or ``models`` (Perplexity's fallback chain, up
  to 5 names: the first one this server has is used, and the next when its model endpoint fails before
  the answer starts), and ``preset`` (``fast``, ``low``, ``medium``, ``high``: the reasoning effort,
  ``fast`` being ``minimal``); ``reasoning.effort``; ``max_steps`` (the most planned sub-queries and
  search rounds, :mod:`groundglass.server.engine_limits`);
- ``instructions`` (a system message for this response only, as in OpenAI's API);
- ``tools``: ``[{"type": "web_search", "filters": {...chat's filter fields...},
  "search_context_size": ..., "max_tokens": ..., "max_tokens_per_page": ..., "user_location": {...}}]``
  (``max_tokens``: the sources' token budget; ``max_tokens_per_page``: how much of one page is read;
  :mod:`groundglass.server.engine_limits`) (OpenAI's ``{"type": "approximate", ...}``
  or Perplexity's flat location, as chat's ``web_search_options.user_location``); left out, the
  model searches as configured; ``[]`` answers without searching; beside it, ``{"type": "fetch_url",
  "max_urls": N}``: the pages the question links are read (:mod:`groundglass.server.fetch_urls`);
- ``text.format`` (OpenAI's ``json_schema`` or ``text``, or ``{"type": "regex", "regex": PATTERN}``)
  or ``response_format`` (Perplexity's, ``json_schema`` or chat's ``regex`` shape): an answer that is
  JSON following the schema, or that the pattern matches in full, as the chat API's
  ``response_format`` gives;
- ``language_preference`` (Perplexity's: the answer's language, as chat asks for it);
- ``return_images`` with ``image_domain_filter``, ``image_format_filter`` and ``num_images``: chat's
  fields and meaning (Perplexity's Agent API has no images; its chat API's names are used rather than
  new ones);
- ``max_output_tokens``, ``temperature``, ``top_p``, ``stream``, ``store``, ``metadata`` and
  ``previous_response_id``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from groundglass.server.fetch_urls import MAX_URLS
from groundglass.server.request_parts import ContextSize, Recency, UserLocation

# Perplexity's presets as reasoning efforts: how much work a question gets.
PRESET_EFFORT = {"fast": "minimal", "low": "low", "medium": "medium", "high": "high"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class InputText(_Strict):
    type: Literal["input_text"]
    text: str


class OutputText(_Strict):
    """Text of an earlier answer passed back in (its annotations describe it and change nothing)."""

    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class InputImage(_Strict):
    type: Literal["input_image"]
    image_url: str = Field(min_length=1)  # http(s) URL or data: URI (file_id: no file store for images)
    detail: Literal["auto", "low", "high"] | None = None


InputPart = Annotated[InputText | OutputText | InputImage, Field(discriminator="type")]


class InputMessage(_Strict):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputPart]
    id: str | None = None  # set when an earlier output item is passed back
    status: Literal["in_progress", "completed", "incomplete"] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if not isinstance(p, InputImage))

    def image_urls(self) -> list[str]:
        if isinstance(self.content, str):
            return []
        return [p.image_url for p in self.content if isinstance(p, InputImage)]


class WebSearchFilters(_Strict):
    """Chat's search filter fields, plus OpenAI's ``allowed_domains`` (the same allow-list)."""

    search_domain_filter: list[str] | None = None
    allowed_domains: list[str] | None = None
    search_recency_filter: Recency | None = None
    search_after_date_filter: str | None = None
    search_before_date_filter: str | None = None
    last_updated_after_filter: str | None = None
    last_updated_before_filter: str | None = None
    search_language_filter: list[str] | None = None


class WebSearchTool(_Strict):
    type: Literal["web_search", "web_search_preview"]
    filters: WebSearchFilters | None = None
    search_context_size: ContextSize | None = None
    user_location: UserLocation | None = None  # chat's web_search_options.user_location
    # the sources' token budget, and how much of one page is read (server.engine_limits)
    max_tokens: int | None = Field(None, ge=100, le=1_000_000)
    max_tokens_per_page: int | None = Field(None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _one_size(self) -> WebSearchTool:
        given = [n for n in ("max_tokens", "max_tokens_per_page") if getattr(self, n) is not None]
        if given and self.search_context_size is not None:
            raise ValueError(
                f"search_context_size and {given[0]} both size what the search reads: give "
                "search_context_size, or max_tokens / max_tokens_per_page (Perplexity's rule)"
            )
        return self


class FetchURLTool(_Strict):
    """Perplexity's ``fetch_url``: the answer reads the pages whose URLs the question gives
    (:mod:`groundglass.server.fetch_urls`), at most ``max_urls`` of them."""

    type: Literal["fetch_url"]
    max_urls: int | None = Field(None, ge=1, le=MAX_URLS)


Tool = Annotated[WebSearchTool | FetchURLTool, Field(discriminator="type")]


class TextFormatJSONSchema(_Strict):
    """OpenAI's ``text.format`` for structured output."""

    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    # "schema" shadows a BaseModel attribute, hence the alias.
    json_schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None  # the answer always follows the schema (a grammar), strict or not


class TextFormatText(_Strict):
    type: Literal["text"]


class TextFormatRegex(_Strict):
    """Chat's ``response_format`` regex, flattened as OpenAI flattens ``json_schema`` in ``text.format``."""

    type: Literal["regex"]
    regex: str


class TextConfig(_Strict):
    format: (
        Annotated[TextFormatText | TextFormatJSONSchema | TextFormatRegex, Field(discriminator="type")] | None
    ) = None


class JSONSchemaSpec(_Strict):
    json_schema_: dict[str, Any] = Field(alias="schema")
    name: str | None = None
    strict: bool | None = None


class RegexSpec(_Strict):
    regex: str


class ResponseFormat(_Strict):
    """Perplexity's ``response_format`` (the chat API's, ``regex`` included)."""

    type: Literal["json_schema", "regex"]
    json_schema: JSONSchemaSpec | None = None
    regex: RegexSpec | None = None

    @model_validator(mode="after")
    def _needs_its_spec(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs a json_schema object with a schema")
        if self.type == "regex" and self.regex is None:
            raise ValueError('response_format of type regex needs {"regex": {"regex": "PATTERN"}}')
        other = "regex" if self.type == "json_schema" else "json_schema"
        if getattr(self, other) is not None:
            raise ValueError(f"response_format of type {self.type} takes no {other}: give one of the two")
        return self


class Reasoning(_Strict):
    effort: Literal["minimal", "low", "medium", "high"] | None = None


class ResponsesRequest(_Strict):
    """POST /v1/responses."""

    input: str | list[InputMessage]
    model: str | None = Field(None, min_length=1)
    # Perplexity's fallback chain: tried in order, the first this server has that answers is used
    models: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1, max_length=5)
    # the most research steps: planned sub-queries and search rounds, each (server.engine_limits)
    max_steps: int | None = Field(None, ge=1, le=100)
    preset: str | None = None
    instructions: str | None = None
    reasoning: Reasoning | None = None
    tools: list[Tool] | None = None
    text: TextConfig | None = None
    response_format: ResponseFormat | None = None
    max_output_tokens: int | None = Field(None, ge=1, le=32768)
    temperature: float | None = Field(None, ge=0, lt=2)
    top_p: float | None = Field(None, gt=0, le=1)
    previous_response_id: str | None = Field(None, min_length=1, max_length=64)
    stream: bool = False
    store: bool = True
    metadata: dict[str, str] | None = None
    # the images of the web pages read, as chat's return_images (groundglass.answer.search.images)
    return_images: bool = False
    image_domain_filter: list[str] | None = None
    image_format_filter: list[str] | None = None
    num_images: int | None = None  # chat's: the most images returned (checked as chat's field)
    language_preference: str | None = None  # ISO 639-1: the answer's language (chat's field)

    @field_validator("input")
    @classmethod
    def _has_question(cls, value: str | list[InputMessage]) -> str | list[InputMessage]:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("input is empty: give the question as a string or as message items")
            return value
        if not any(m.role == "user" and (m.text().strip() or m.image_urls()) for m in value):
            raise ValueError("no user message with text or an image: the last user message is the question")
        return value

    @field_validator("preset")
    @classmethod
    def _preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESET_EFFORT:
            raise ValueError(f"unknown preset {value!r}; presets here: {', '.join(PRESET_EFFORT)}")
        return value

    @field_validator("tools")
    @classmethod
    def _one_search_tool(cls, value: list[Tool] | None) -> list[Tool] | None:
        if value is None:
            return value
        searches = [t for t in value if isinstance(t, WebSearchTool)]
        if len(searches) > 1:
            raise ValueError("give at most one web_search tool (its filters apply to every search)")
        if sum(isinstance(t, FetchURLTool) for t in value) > 1:
            raise ValueError("give at most one fetch_url tool")
        if len(value) > len(searches) and not searches:
            raise ValueError(
                'fetch_url reads the pages the question links beside a web search here: add {"type": '
                '"web_search"} to tools (the answer then searches only when the pages do not answer)'
            )
        return value

    @model_validator(mode="after")
    def _one_format(self) -> ResponsesRequest:
        if self.response_format is not None and self.text is not None and self.text.format is not None:
            raise ValueError(
                "give the output format once: text.format (OpenAI's) or response_format (Perplexity's)"
            )
        return self

    @field_validator("return_images")
    @classmethod
    def _images_need_a_search(cls, value: bool, info: ValidationInfo) -> bool:
        tools = info.data.get("tools")  # declared before return_images, so already checked
        if value and tools is not None and not tools:
            raise ValueError(
                "return_images returns the images of the pages a search reads, and tools: [] answers "
                'without searching: give tools [{"type": "web_search"}] (or leave tools out), or leave '
                "return_images out"
            )
        return value

    @model_validator(mode="after")
    def _effort_agrees(self) -> ResponsesRequest:
        effort = self.reasoning.effort if self.reasoning else None
        if self.preset and effort and PRESET_EFFORT[self.preset] != effort:
            raise ValueError(
                f"preset {self.preset!r} means reasoning effort {PRESET_EFFORT[self.preset]!r}, but "
                f"reasoning.effort is {effort!r}: give one of the two"
            )
        return self

    def json_schema(self) -> tuple[str | None, dict[str, Any], bool | None] | None:
        """(name, schema, strict) of the structured output asked for, or None for prose or a regex."""
        fmt = self.text.format if self.text else None
        if isinstance(fmt, TextFormatJSONSchema):
            return fmt.name, fmt.json_schema_, fmt.strict
        spec = self.response_format.json_schema if self.response_format is not None else None
        if spec is not None:
            return spec.name, spec.json_schema_, spec.strict
        return None

    def regex(self) -> str | None:
        """The pattern the whole answer must match, or None."""
        fmt = self.text.format if self.text else None
        if isinstance(fmt, TextFormatRegex):
            return fmt.regex
        spec = self.response_format.regex if self.response_format is not None else None
        return spec.regex if spec is not None else None

    def search_tool(self) -> tuple[int, WebSearchTool] | None:
        """The ``web_search`` tool and its place in ``tools``, when given."""
        found = [(i, t) for i, t in enumerate(self.tools or []) if isinstance(t, WebSearchTool)]
        return found[0] if found else None

    def fetch_tool(self) -> FetchURLTool | None:
        return next((t for t in self.tools or [] if isinstance(t, FetchURLTool)), None)

    def effort(self) -> str | None:
        if self.reasoning and self.reasoning.effort:
            return self.reasoning.effort
        return PRESET_EFFORT[self.preset] if self.preset else None

    def messages(self) -> list[InputMessage]:
        if isinstance(self.input, str):
            return [InputMessage(role="user", content=self.input)]
        return list(self.input)
