"""Failover over the configured providers, in order, with the result cache in front.

1. Providers that lack what they need (a base URL, an API key) are skipped as "not configured", and
   under ``safe_search`` those that cannot filter adult content out (``takes_safe_search``).
2. If any configured provider has a fresh cached answer for this query and these filters, the first
   such answer is used: a repeated query costs no provider call, even when the provider that
   answered it first is now down.
3. Otherwise providers are asked one after the other; the first non-empty answer wins and is cached.
   An error, a timeout, a 429/5xx, malformed JSON or an empty answer moves on to the next one. When
   every provider that answered found nothing, the first of them is the result's provider, with no
   results: only when none answered at all is the provider ``None`` (the search failed).

Every step is recorded as a :class:`ProviderAttempt`, so the answer can say which provider was used
and why the others were not.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from groundglass.answer.search.base import ProviderError, SearchProvider, SearchResult
from groundglass.answer.search.cache import SearchCache, cache_key
from groundglass.answer.search.filters import SearchFilters
from groundglass.log import get_logger

if TYPE_CHECKING:
    import httpx

    from groundglass.config import Settings

log = get_logger(__name__)

Outcome = Literal["ok", "cached", "failed", "empty", "skipped"]


@dataclass
class ProviderAttempt:
    provider: str
    outcome: Outcome
    detail: str = ""  # why it failed / was skipped, in words
    kind: str = ""  # ProviderError kind: rate_limited, timeout, malformed, http_error, ...
    results: int = 0
    seconds: float = 0.0
    location: list[str] = field(default_factory=list)  # the parts of the asker's location it was given

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FailoverResult:
    provider: str | None  # the provider whose results these are (None: none answered, not even empty)
    results: list[SearchResult]
    attempts: list[ProviderAttempt] = field(default_factory=list)
    cached: bool = False


class Failover:
    def __init__(self, providers: list[SearchProvider], cache: SearchCache) -> None:
        self.providers = providers
        self.cache = cache

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> FailoverResult:
        attempts: list[ProviderAttempt] = []
        asked = filters.location.given() if filters.location else ()

        def used(provider: SearchProvider) -> list[str]:
            # a provider may take fewer parts than its location_fields for this request (a name it
            # cannot send, a country it has no region for): it says so through location_parts
            parts = getattr(provider, "location_parts", None)
            taken = parts(filters) if parts is not None else provider.location_fields
            return [f for f in asked if f in taken]

        ready = self._configured(query, filters, max_results, attempts)
        for provider, key in ready:
            hit = await asyncio.to_thread(self.cache.get, key)
            if hit:
                attempts.append(
                    ProviderAttempt(provider.name, "cached", results=len(hit), location=used(provider))
                )
                return FailoverResult(provider.name, hit, attempts, cached=True)

        for provider, key in ready:
            results = await self._ask(provider, query, filters, max_results, attempts, used(provider))
            if results:
                await asyncio.to_thread(self.cache.put, key, provider.name, query, results)
                return FailoverResult(provider.name, results, attempts)
        # a provider that answered with no results did answer: the web has nothing for this query,
        # which is an empty result (a decline, an empty /search), not a search that failed
        answered = next((a.provider for a in attempts if a.outcome == "empty"), None)
        return FailoverResult(answered, [], attempts)

    def _configured(
        self, query: str, filters: SearchFilters, max_results: int, attempts: list[ProviderAttempt]
    ) -> list[tuple[SearchProvider, str]]:
        """The providers that have what they need (and, under safe_search, filter adult content out),
        in order, each with its cache key; the others are noted in ``attempts`` as skipped."""
        filter_key = filters.as_key()
        ready: list[tuple[SearchProvider, str]] = []
        for provider in self.providers:
            missing = provider.configured()
            if missing:
                attempts.append(
                    ProviderAttempt(
                        provider.name, "skipped", f"not configured: {missing}", kind="not_configured"
                    )
                )
                continue
            if filters.safe_search and not provider.takes_safe_search:
                attempts.append(
                    ProviderAttempt(
                        provider.name,
                        "skipped",
                        "filters no adult content out (safe_search)",
                        kind="no_safe_search",
                    )
                )
                continue
            ready.append(
                (provider, cache_key(provider.name, provider.fingerprint(), query, filter_key, max_results))
            )
        return ready

    async def _ask(
        self,
        provider: SearchProvider,
        query: str,
        filters: SearchFilters,
        max_results: int,
        attempts: list[ProviderAttempt],
        location: list[str],
    ) -> list[SearchResult]:
        """One provider's results; [] when it failed or found nothing (``attempts`` says which)."""
        started = time.perf_counter()
        try:
            results = await provider.search(query, filters, max_results)
        except ProviderError as exc:
            attempts.append(
                ProviderAttempt(
                    provider.name,
                    "failed",
                    exc.message,
                    kind=exc.kind,
                    seconds=_since(started),
                    location=location,
                )
            )
            log.info("search_provider_failed", provider=provider.name, kind=exc.kind, detail=exc.message)
            return []
        except Exception as exc:  # a bug in one provider must not stop the others
            log.exception("search_provider_crashed", provider=provider.name)
            attempts.append(
                ProviderAttempt(
                    provider.name,
                    "failed",
                    f"{provider.name}: internal error: {type(exc).__name__}: {exc}",
                    kind="error",
                    seconds=_since(started),
                )
            )
            return []
        if not results:
            attempts.append(
                ProviderAttempt(
                    provider.name,
                    "empty",
                    f"{provider.name}: no results",
                    kind="no_results",
                    seconds=_since(started),
                )
            )
            return []
        attempts.append(
            ProviderAttempt(
                provider.name, "ok", results=len(results), seconds=_since(started), location=location
            )
        )
        return results


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)


def build_providers(settings: Settings, client: httpx.AsyncClient) -> list[SearchProvider]:
    """The providers named in ``search.providers``, in that order."""
    from groundglass.answer.search.brave import BraveProvider
    from groundglass.answer.search.duckduckgo import DuckDuckGoProvider
    from groundglass.answer.search.local import LocalProvider
    from groundglass.answer.search.searxng import SearxngProvider
    from groundglass.answer.search.tavily import TavilyProvider

    s = settings.search
    made: dict[str, Any] = {
        "searxng": lambda: SearxngProvider(s.searxng, client, s.timeout_s),
        "brave": lambda: BraveProvider(s.brave, client, s.timeout_s),
        "tavily": lambda: TavilyProvider(s.tavily, client, s.timeout_s),
        "duckduckgo": lambda: DuckDuckGoProvider(s.duckduckgo, s.timeout_s),
        "local": lambda: LocalProvider(settings, s.timeout_s),
    }
    return [made[name]() for name in s.providers]
