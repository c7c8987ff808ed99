"""One checked request with what it runs on: the engine's unit of work, read by its parts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from groundglass.answer.effort import EffortPreset
from groundglass.answer.llm.base import LLM
from groundglass.answer.types import AskRequest, ChatMessage

if TYPE_CHECKING:
    from groundglass.answer.index.store import LocalIndex
    from groundglass.answer.retrieve import WebSearch
    from groundglass.answer.search.web import WebRetriever
    from groundglass.answer.vision import LoadedImage


@dataclass
class Job:
    """One checked request with what it runs on."""

    request: AskRequest
    question: str
    llm: LLM
    search: str | None  # "index" | "web" | None when search is disabled
    index: LocalIndex | None  # the local index, in "index" mode
    web: WebRetriever | None  # the web retriever, in "web" mode
    images: list[LoadedImage]
    max_tokens: int
    temperature: float
    top_k: int | None  # None: the default for the search mode
    effort: EffortPreset
    history: list[ChatMessage]  # earlier turns (user/assistant), oldest first, fitted to the context
    instructions: str = ""  # the caller's own system message(s), added to the answer's system prompt
    early_search: WebSearch | None = None  # the question's web search, started before the model loaded
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    reasoning_tokens: int = 0

    def lap(self, name: str) -> None:
        self.timings[name] = round(time.perf_counter() - self.started, 4)
