"""The API's search filter fields, mapped onto the search layer's ``SearchFilters``.

One implementation of the filters serves everything: the search layer's. This module only maps the
request fields onto it and turns its errors into 400s naming the parameter. ``search_*_date_filter``
bound the publication date; ``last_updated_*_filter`` the day the page last changed (its modified-time
metadata or ``Last-Modified`` header, known once the page is read; for the local index's documents,
the file's modification time or the crawled page's ``Last-Modified``, recorded when it was added), and
a source that does not say when it changed is kept out by them. ``search_language_filter`` keeps web
pages in those languages and does not filter the index's passages, so a request that searches the
index with it is refused, naming it. The engine
enforces the filters on the sources of chat answers (:func:`groundglass.answer.retrieve.source_filter`
for the local index, the web retriever for web results).
"""

from __future__ import annotations

from groundglass.answer.search.filters import SearchFilters
from groundglass.errors import GroundglassError
from groundglass.server.errors import APIError
from groundglass.server.schemas import FilterFields


def build_filters(body: FilterFields, *, search: str | None = None) -> SearchFilters:
    """The checked filters of a request; an APIError 400 naming the bad parameter. ``search`` is where
    the request searches (``index`` refuses the language filter; None: decided elsewhere)."""
    if body.search_language_filter and search == "index":
        raise APIError(
            400,
            "search_language_filter keeps the web pages in those languages, and this request searches "
            'the local index, which it does not filter: send "source": "web" (or use a model whose '
            "source is web), or leave it out",
            code="unsupported_parameter",
            param="search_language_filter",
        )
    try:
        return SearchFilters.build(
            domains=body.search_domain_filter,
            recency=body.search_recency_filter,
            after=body.search_after_date_filter,
            before=body.search_before_date_filter,
            languages=body.search_language_filter,
            updated_after=body.last_updated_after_filter,
            updated_before=body.last_updated_before_filter,
        )
    except GroundglassError as exc:
        raise APIError(400, str(exc), code="invalid_value", param=exc.param) from exc
