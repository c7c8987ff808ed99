"""Whether a request's location (``user_location``, /search's ``country``) can be honoured, before any
work starts.

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


def provider_fields() -> dict[str, tuple[str, ...]]:
    """Each provider's name -> the parts of a location it passes on."""
    from groundglass.answer.search.brave import BraveProvider
    from groundglass.answer.search.duckduckgo import DuckDuckGoProvider
    from groundglass.answer.search.local import LocalProvider
    from groundglass.answer.search.searxng import SearxngProvider
    from groundglass.answer.search.tavily import TavilyProvider

    kinds = (BraveProvider, DuckDuckGoProvider, LocalProvider, SearxngProvider, TavilyProvider)
    return {k.name: k.location_fields for k in kinds}


def check_location(settings: Settings, location: Location, *, search: str, param: str) -> None:
    """Raise a 400 naming ``param`` (and the part) unless every part of ``location`` reaches a provider."""
    if search != "web":
        raise APIError(
            400,
            f"{param} applies to a web search, and this request searches the local index, where a "
            'location changes nothing: send "search": "web" (or use a model whose search is web), '
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
