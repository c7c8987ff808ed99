"""The API's search filter fields, mapped onto the search layer's ``SearchFilters``.

One implementation of the filters serves everything: the search layer's. This module only maps the
request fields onto it (``last_updated_*`` narrow the same publication-date window: a page's
``last_updated`` is known only once it is read, and the index's documents have none, so filtering on
it would drop every result before reading) and turns its errors into 400s naming the parameter. The
engine enforces the filters on the sources of chat answers
(:func:`groundglass.answer.retrieve.source_filter` for the local index, the web retriever for web
results).
"""

from __future__ import annotations

from groundglass.answer.search.filters import SearchFilters, parse_filter_date
from groundglass.errors import GroundglassError
from groundglass.server.errors import APIError
from groundglass.server.schemas import FilterFields


def build_filters(body: FilterFields, languages: list[str] | None = None) -> SearchFilters:
    """The checked filters of a request; an APIError 400 naming the bad parameter."""
    try:
        afters = [
            d
            for d in (
                parse_filter_date(body.search_after_date_filter, "search_after_date_filter"),
                parse_filter_date(body.last_updated_after_filter, "last_updated_after_filter"),
            )
            if d
        ]
        befores = [
            d
            for d in (
                parse_filter_date(body.search_before_date_filter, "search_before_date_filter"),
                parse_filter_date(body.last_updated_before_filter, "last_updated_before_filter"),
            )
            if d
        ]
        return SearchFilters.build(
            domains=body.search_domain_filter,
            recency=body.search_recency_filter,
            after=max(afters) if afters else None,
            before=min(befores) if befores else None,
            languages=languages,
        )
    except GroundglassError as exc:
        raise APIError(400, str(exc), code="invalid_value", param=exc.param) from exc
