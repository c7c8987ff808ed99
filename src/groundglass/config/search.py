"""``[search]``: web search providers, failover, the result cache and what each
``search_context_size`` means."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from groundglass.config.section import Section, renamed_keys

# --- web search: providers, failover, cache, reader limits --------------------------------------------

ProviderName = Literal["searxng", "duckduckgo", "brave", "tavily", "local"]
ContextSizeName = Literal["low", "medium", "high"]


class SearxngSettings(Section):
    """A SearXNG instance's JSON API (``search.formats`` must include ``json`` in its settings.yml)."""

    base_url: str = ""  # e.g. "http://localhost:8888"; empty: the provider is skipped as not configured
    categories: str = "general"
    engines: str = ""  # comma-separated SearXNG engine names; empty: the instance's defaults


class DuckDuckGoSettings(Section):
    """DuckDuckGo's HTML endpoint through the ``ddgs`` package (no key)."""

    base_url: str = "https://html.duckduckgo.com/html/"
    # ddgs's region code (a country and a language), e.g. "us-en", "de-de"; "wt-wt" = none. Not named
    # region: that is a user_location's state or province everywhere else.
    locale: str = "wt-wt"
    safesearch: Literal["on", "moderate", "off"] = "moderate"

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data: Any) -> Any:
        return renamed_keys(data, "search.duckduckgo", {"region": "locale"})


class BraveSettings(Section):
    """Brave Search API (``GET /res/v1/web/search``, header ``X-Subscription-Token``)."""

    base_url: str = "https://api.search.brave.com/res/v1"
    api_key: SecretStr | None = None  # falls back to $BRAVE_API_KEY
    country: str = ""  # e.g. "US"; empty: Brave's default

    def key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key else os.environ.get("BRAVE_API_KEY", "")


class TavilySettings(Section):
    """Tavily (``POST /search`` with a JSON body, ``Authorization: Bearer KEY``)."""

    base_url: str = "https://api.tavily.com"
    api_key: SecretStr | None = None  # falls back to $TAVILY_API_KEY
    search_depth: Literal["basic", "advanced"] = "basic"

    def key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key else os.environ.get("TAVILY_API_KEY", "")


class LocalSearchSettings(Section):
    """The local index as a search provider."""

    index: str = ""  # empty: retrieval.index


class SearchContextSize(Section):
    """What one ``search_context_size`` means: pages read, and how much of them reaches the model."""

    results: int = Field(ge=1, le=50)  # search results read (pages fetched)
    top_k: int = Field(ge=1, le=100)  # chunks given to the model
    context_tokens: int = Field(ge=100)  # token budget for those chunks


def _default_search_context_sizes() -> dict[str, SearchContextSize]:
    return {
        "low": SearchContextSize(results=3, top_k=4, context_tokens=900),
        "medium": SearchContextSize(results=5, top_k=6, context_tokens=1500),
        "high": SearchContextSize(results=8, top_k=10, context_tokens=2400),
    }


class SearchSettings(Section):
    """Web search: providers tried in ``providers`` order (failover), a result cache. How the pages of
    the results are read is ``[fetch]``."""

    # A provider without what it needs (no base_url, no API key) is skipped as "not configured".
    providers: list[ProviderName] = Field(
        default_factory=lambda: ["searxng", "brave", "tavily", "duckduckgo"]
    )  # type: ignore[arg-type]
    max_results: int = Field(10, ge=1, le=50)  # results asked of a provider
    timeout_s: float = Field(10.0, gt=0)  # one provider call, all included
    cache_ttl_s: float = Field(3600.0, ge=0)  # 0 turns the result cache off
    context_size: ContextSizeName = "low"  # default search_context_size
    context_sizes: dict[ContextSizeName, SearchContextSize] = Field(
        default_factory=_default_search_context_sizes
    )  # type: ignore[arg-type]
    max_chunks_per_page: int = Field(24, ge=1)  # ranking reads at most this many chunks of one page
    # Read the provider's first result first, then the others by how close their title and snippet
    # are to the question (answer/search/result_order.py); false: in the provider's order.
    rerank_results: bool = True
    # Date filters need a date: "drop" leaves out results whose date neither the provider nor the page
    # states; "keep" lets them through.
    undated: Literal["drop", "keep"] = "drop"
    searxng: SearxngSettings = Field(default_factory=SearxngSettings)
    duckduckgo: DuckDuckGoSettings = Field(default_factory=DuckDuckGoSettings)
    brave: BraveSettings = Field(default_factory=BraveSettings)
    tavily: TavilySettings = Field(default_factory=TavilySettings)
    local: LocalSearchSettings = Field(default_factory=LocalSearchSettings)

    @field_validator("context_sizes", mode="before")
    @classmethod
    def _merge_context_sizes(cls, value: Any) -> Any:
        """A config that sets one size keeps the built-in others."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_search_context_sizes().items()}
        merged.update(value)
        return merged

    @field_validator("providers")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each provider may appear once")
        return value
