"""Whether a request's location (``user_location``, /search's ``country``) and ``safe_search`` can be
honoured, before any work starts.

A location changes what a web search provider answers, so it is honoured where a provider of
``search.providers`` takes it (each provider says which parts: ``location_fields``). It is refused,
with a 400 naming the part and the fix, where nothing would use it: a request that searches the local
index (documents have no place to prefer), or a part that none of the configured providers takes
(SearXNG and Tavily take the country only; Brave takes every part). At run time the search report
says which provider was given which parts (``search_report.location_used_by``): a failover to a
provider that takes fewer parts is reported there, not refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from groundglass.server.errors import APIError

if TYPE_CHECKING:
    from groundglass.answer.search.filters import Location
    from groundglass.config import Settings

TOP_LEVEL = ("country", "latitude", "longitude")


def provider_kinds() -> dict[str, type]:
    """Each provider's name -> its class."""
    from groundglass.answer.search.brave import BraveProvider
    from groundglass.answer.search.duckduckgo import DuckDuckGoProvider
    from groundglass.answer.search.local import LocalProvider
    from groundglass.answer.search.searxng import SearxngProvider
    from groundglass.answer.search.tavily import TavilyProvider

    kinds = (BraveProvider, DuckDuckGoProvider, LocalProvider, SearxngProvider, TavilyProvider)
    return {k.name: k for k in kinds}


def provider_fields() -> dict[str, tuple[str, ...]]:
    """Each provider's name -> the parts of a location it passes on."""
    return {name: k.location_fields for name, k in provider_kinds().items()}  # type: ignore[attr-defined]


def check_safe_search(settings: Settings, *, search: str) -> None:
    """Raise a 400 naming ``safe_search`` unless a configured web provider filters adult content out
    (only those are asked under it: the others are skipped, so a failover never drops the filter)."""
    if search != "web":
        raise APIError(
            400,
            "safe_search filters the web's results, and this request searches the local index, your "
            'own documents, which it does not filter: send "source": "web" (or use a model whose source '
            "is web), or leave it out",
            code="unsupported_parameter",
            param="safe_search",
        )
    kinds = provider_kinds()
    configured = list(settings.search.providers)
    if not any(getattr(kinds.get(p), "takes_safe_search", False) for p in configured):
        could = sorted(n for n, k in kinds.items() if getattr(k, "takes_safe_search", False))
        raise APIError(
            400,
            f"safe_search: none of the search providers here ({', '.join(configured) or 'none'}) "
            f"filters adult content out; {', '.join(could)} do (add one to search.providers), or leave "
            "it out",
            code="unsupported_parameter",
            param="safe_search",
        )


def check_location(settings: Settings, location: Location, *, search: str, param: str) -> None:
    """Raise a 400 naming ``param`` (and the part) unless every part of ``location`` reaches a provider."""
    if search != "web":
        raise APIError(
            400,
            f"{param} applies to a web search, and this request searches the local index, where a "
            'location changes nothing: send "source": "web" (or use a model whose source is web), '
            "or leave it out",
            code="unsupported_parameter",
            param=param,
        )
    fields = provider_fields()
    configured = list(settings.search.providers)
    for part in location.given():
        takers = [p for p in configured if part in fields.get(p, ())]
        if takers:
            continue
        could = sorted(p for p, f in fields.items() if part in f)
        # a location sent as top-level fields (/search's and chat's country...) names the part itself
        name = part if param in TOP_LEVEL else f"{param}.{part}"
        raise APIError(
            400,
            f"{name}: none of the search providers here ({', '.join(configured) or 'none'}) "
            f"takes a location's {part}; {', '.join(could)} do (add one to search.providers), "
            "or leave it out",
            code="unsupported_parameter",
            param=name,
        )
