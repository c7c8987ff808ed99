"""Perplexity's ``search_mode`` (``web``, ``academic``, ``sec``) as a domain allow-list on the search filters.

Perplexity's modes pick which sources it searches: the open web, scholarly sources, or SEC filings.
Here a mode narrows the sources, wherever they come from (the local index or the web), to the domains
``server.search_modes[mode]`` lists (subdomains included); an empty list (``web``'s, by default)
narrows nothing. The defaults: ``academic`` = open scholarly indexes, preprint servers and the large
publishers; ``sec`` = ``sec.gov`` (EDGAR). Both filters hold at once: a request's own
``search_domain_filter`` allow-list keeps the domains that lie within the mode's list (``nature.com``
under ``academic``), or the mode's domains that lie within it (``gov`` under ``sec`` keeps
``sec.gov``); when nothing is left the request is a 400. Its ``-domain`` entries deny as usual.
"""

from __future__ import annotations

from dataclasses import replace

from groundglass.answer.search.filters import SearchFilters
from groundglass.server.errors import APIError


def _within(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def narrow_to_mode(filters: SearchFilters, mode: str | None, modes: dict[str, list[str]]) -> SearchFilters:
    """``filters`` with the mode's allow-list applied; APIError 400 when the two leave no domain."""
    domains = modes.get(mode or "web") or []
    if not domains:
        return filters
    if not filters.allow_domains:
        return replace(filters, allow_domains=tuple(domains))
    kept = [d for d in filters.allow_domains if any(_within(d, m) for m in domains)]
    kept += [m for m in domains if m not in kept and any(_within(m, d) for d in filters.allow_domains)]
    if not kept:
        shown = ", ".join(domains[:6]) + (", ..." if len(domains) > 6 else "")
        raise APIError(
            400,
            f"search_domain_filter allows {', '.join(filters.allow_domains)}, none of which search_mode "
            f"'{mode}' searches ({shown})",
            code="invalid_value",
            param="search_domain_filter",
        )
    return replace(filters, allow_domains=tuple(kept))
