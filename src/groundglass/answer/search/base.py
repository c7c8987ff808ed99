"""The small interface every search provider implements, and the result type they all return.

A provider is an object with a ``name``, the parts of the asker's location it passes on
(``location_fields``, names of :class:`~groundglass.answer.search.filters.Location`'s fields), a
``configured()`` check and one coroutine::

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]

It passes the filters on to its service where the service understands them (we enforce them again
afterwards anyway) and raises :class:`ProviderError` for anything that should make the failover try
the next provider: HTTP 429 or 5xx, a timeout, malformed JSON, an unreachable service.

:func:`get_json` does the HTTP part for the JSON providers (SearXNG, Brave, Tavily) so that each of
them is only its request and its response parsing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

if TYPE_CHECKING:
    from groundglass.answer.search.filters import SearchFilters

FailureKind = Literal[
    "not_configured",
    "rate_limited",
    "http_error",
    "timeout",
    "malformed",
    "unreachable",
    "no_results",
    "error",
]


@dataclass
class SearchResult:
    """One hit from a provider. ``text`` is set only when the provider already gives the passage
    (the local index); web results are read by the page reader."""

    url: str
    title: str
    snippet: str = ""
    date: str | None = None  # ISO date or date-time, as the provider gave it
    language: str | None = None  # ISO 639-1 when the provider says
    provider: str = ""
    score: float | None = None
    text: str | None = None
    last_updated: str | None = None  # ISO day the source last changed, when the provider knows (the index)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})


class ProviderError(Exception):
    """A provider could not answer; the failover moves on to the next one."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class SearchProvider(Protocol):
    name: str
    location_fields: tuple[str, ...]
    takes_safe_search: bool  # it can filter adult content out (the filters' safe_search)

    def configured(self) -> str | None:
        """None when the provider can run; otherwise what is missing and how to fix it."""
        ...

    def fingerprint(self) -> str:
        """What besides the query and filters changes its answers (its base URL): part of the cache key."""
        ...

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]: ...


def http_client(timeout_s: float) -> httpx.AsyncClient:
    """A client for talking to search services (trusted, configured endpoints: no SSRF guard here;
    the pages they point to go through the reader, which has one)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=True,
        max_redirects=3,
        headers={"User-Agent": "groundglass/0.1", "Accept": "application/json"},
    )


async def get_json(
    client: httpx.AsyncClient, provider: str, method: str, url: str, *, timeout_s: float, **kwargs: Any
) -> Any:
    """One request to a JSON API; every way it can fail becomes a :class:`ProviderError`.

    ``timeout_s`` bounds the whole exchange (a server that trickles its answer byte by byte is cut off
    too, which httpx's per-read timeout alone would not do).
    """
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.request(method, url, **kwargs)
    except TimeoutError as exc:
        raise ProviderError("timeout", f"{provider}: no answer within {timeout_s:g} s") from exc
    except httpx.TimeoutException as exc:
        raise ProviderError("timeout", f"{provider}: timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise ProviderError(
            "unreachable", f"{provider}: cannot reach {url}: {type(exc).__name__}: {exc}"
        ) from exc
    status = response.status_code
    if status == 429:
        raise ProviderError("rate_limited", f"{provider}: rate limited (HTTP 429)")
    if status in (401, 403):
        raise ProviderError(
            "http_error",
            f"{provider}: HTTP {status}, access refused "
            "(check the API key, or that the JSON format is enabled)",
        )
    if status >= 400:
        raise ProviderError("http_error", f"{provider}: HTTP {status}")
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProviderError("malformed", f"{provider}: the answer is not valid JSON ({exc})") from exc


def field(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...`` or None when any step is missing or of the wrong type."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def results_list(data: Any, provider: str, *path: str) -> list[Any]:
    """The list at ``path`` in a decoded answer, or a ``malformed`` :class:`ProviderError`."""
    items = field(data, *path)
    if not isinstance(items, list):
        where = ".".join(path)
        raise ProviderError("malformed", f"{provider}: the answer has no {where!r} list")
    return items


def text_or_empty(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def parse_result_items(data: Any, provider: str, *, snippet_key: str, date_key: str) -> list[SearchResult]:
    """``results[]`` items with url/title/snippet/date/score, as SearXNG and Tavily both answer."""
    out: list[SearchResult] = []
    for item in results_list(data, provider, "results"):
        if not isinstance(item, dict):
            continue
        url = text_or_empty(item.get("url"))
        if not url.startswith(("http://", "https://")):
            continue
        score = item.get("score")
        out.append(
            SearchResult(
                url=url,
                title=text_or_empty(item.get("title")) or url,
                snippet=text_or_empty(item.get(snippet_key)),
                date=text_or_empty(item.get(date_key)) or None,
                provider=provider,
                score=float(score) if isinstance(score, int | float) else None,
            )
        )
    return out
