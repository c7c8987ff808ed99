"""Plain data shared across the answer pipeline: sources, requests and finished answers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from groundglass.answer.search.filters import SearchFilters
    from groundglass.answer.vision import ImageInput


@dataclass
class Source:
    """One piece of evidence given to the model. Marker [n] refers to the n-th source (1-based)."""

    url: str
    title: str
    text: str  # the chunk text the model sees
    score: float = 0.0  # fused relevance, 0..1, higher is better
    date: str | None = None  # ISO date (YYYY-MM-DD) when known
    doc_id: str = ""
    chunk_id: str = ""
    snippet: str = ""  # short excerpt for display
    source: str = "index"  # where it was found: index (the local index) | web (a search provider's result)
    # when the page last changed (ISO date): its Last-Modified header or modified-time metadata; None
    # when the page does not say (never guessed from the publication date)
    last_updated: str | None = None
    # names the source's whole collection is about, which its own text may not repeat: "PostgreSQL"
    # for a chunk of the PostgreSQL manual that only says "the server" (space-separated)
    about: str = ""

    def search_result(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "url": self.url,
            "date": self.date,
            "last_updated": self.last_updated,
            "snippet": self.snippet or self.text[:300],
            "source": self.source,
            "score": round(self.score, 4),
        }


@dataclass
class ChatMessage:
    """One turn of a conversation, as the engine and every LLM runtime take it. The faces build these
    once from their own input (the server in ``server.chat_input.turns``, the CLI's chat loop)."""

    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class AskRequest:
    """What the engine needs to answer. The CLI and the server both build one of these."""

    messages: list[ChatMessage]
    index: str | None = None  # None -> settings.retrieval.index
    model: str | None = None  # model spec; None -> settings.llm.model
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    disable_search: bool = False
    top_k: int | None = None
    search: str = "index"  # "index": the local index; "web": the search providers (settings.search)
    # Domain, recency, date and language filters, enforced on the index's sources and the web's results.
    search_filters: SearchFilters | None = None
    search_context_size: str | None = None  # web: low | medium | high (settings.search.context_sizes)
    images: list[ImageInput] = field(default_factory=list)  # images that drive the search
    # minimal | low | medium | high (None: the model's default, settings.reasoning.default_effort)
    reasoning_effort: str | None = None
    preset_name: str | None = None  # the API model name (sonar, ...): picks per-model effort rules
    return_related_questions: bool | None = None  # None: as the reasoning effort says
    # sources of earlier turns (a chat session keeps them): reused when they answer the follow-up
    prior_sources: list[Source] = field(default_factory=list)
    # a JSON schema the answer must follow (the API's response_format json_schema); None: prose
    response_schema: dict[str, Any] | None = None
    # set by the caller to stop the run early (an API client went away): generation ends at its next token
    cancel: threading.Event | None = None

    @classmethod
    def from_question(cls, question: str, **kw: Any) -> AskRequest:
        return cls(messages=[ChatMessage("user", question)], **kw)

    @property
    def question(self) -> str:
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""


@dataclass
class SentenceSupport:
    """Per-sentence attribution: which sources a sentence cites and how well they support it."""

    text: str
    citations: list[int]  # 1-based source numbers cited in this sentence
    support: float  # 0..1, best support score over the cited sources (0 when none cited)
    supported: bool
    unsupported_values: list[str] = field(default_factory=list)  # values none of the cited sources holds
    restates_question: bool = False  # adds nothing beyond the question's words and the markers


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    num_search_queries: int = 0
    reasoning_tokens: int = 0  # written while rewriting, planning and answering sub-queries (and the trace)
    cached_tokens: int = 0  # of the answer's prompt_tokens, those the model's cache already held

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        out = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "num_search_queries": self.num_search_queries,
        }
        if self.reasoning_tokens:
            out["reasoning_tokens"] = self.reasoning_tokens
        if self.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return out


@dataclass
class Answer:
    content: str
    sources: list[Source]
    model: str
    finish_reason: str = "stop"  # "stop" | "length"
    usage: Usage = field(default_factory=Usage)
    attribution: list[SentenceSupport] = field(default_factory=list)
    declined: bool = False  # the sources did not contain the answer and the engine said so
    timings: dict[str, float] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)  # what was searched
    search_report: dict[str, Any] | None = None  # web: providers used and failed, pages read, errors
    visual_facts: list[dict[str, Any]] = field(default_factory=list)  # per image: text, labels, caption
    reasoning: dict[str, Any] | None = None  # effort, rewritten query, reuse, plan and its steps
    related_questions: list[str] = field(default_factory=list)
    # the answer's check: drafts written, drafts sent back and why, sentences left out (None: unchecked)
    grounding: dict[str, Any] | None = None
