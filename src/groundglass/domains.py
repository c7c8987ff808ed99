"""Domain names as search filters and settings compare them: ``https://www.Example.com/a`` is ``example.com``.

A shared utility: the search filters (``search_domain_filter``) and the settings (``server.search_modes``)
both read domains, and settings sit below the engines, so the rule lives here rather than in either.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from groundglass.errors import GroundglassError

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}$")


def normalize_domain(entry: str) -> str:
    """``https://www.Example.com/path`` -> ``example.com``; raises on what is not a domain."""
    text = entry.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.split("/", 1)[0].split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    if not text or not _DOMAIN.match(text):
        raise GroundglassError(
            f"search_domain_filter entry {entry!r} is not a domain",
            'use names like "nasa.gov", or "-reddit.com" to exclude one',
            param="search_domain_filter",
        )
    return text
