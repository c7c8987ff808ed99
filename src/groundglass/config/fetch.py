"""``[fetch]``: how every URL is fetched, and ``[crawl]``: how far the crawler goes; the keys that
moved to ``[fetch]`` from ``[crawl]`` and ``[search.reader]``, read for one release."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import Field

from groundglass.config.section import Section
from groundglass.errors import GroundglassError


class CrawlSettings(Section):
    """``index add URL``: how far the crawler goes (how it fetches each page is ``[fetch]``)."""

    max_pages: int = 200
    max_depth: int = 3


class FetchSettings(Section):
    """Every URL groundglass fetches: the pages the crawler adds to an index (``index add URL``), the
    pages a web search reads (the page reader), and the image URLs of a question."""

    user_agent: str = "groundglass/0.1 (+https://github.com/groundglass)"
    # Private, loopback, link-local and metadata addresses are refused (after DNS resolution and on
    # every redirect) unless this is on, or the address is inside allowed_networks (CIDRs).
    allow_private: bool = False
    allowed_networks: list[str] = Field(default_factory=list)
    timeout_s: float = Field(10.0, gt=0)  # one page a web search reads, or an image URL: connect to last byte
    max_bytes: int = Field(3_000_000, ge=1024)  # bytes read of such a page; HTML/text beyond it is cut off
    max_redirects: int = Field(5, ge=0, le=30)
    concurrency: int = Field(8, ge=1, le=256)  # pages a web search reads at once
    per_host_concurrency: int = Field(2, ge=1, le=256)  # of those, at most this many to one host
    # At least this long between request starts to one host. 0: the few pages of one answer (often of one
    # documentation site) are read at once, as a browser would, within per_host_concurrency; a 0.25 s pace
    # cost 0.4-0.5 s of every answer that read three pages of one site. The crawler keeps its own pace
    # (one page at a time, and robots.txt's Crawl-delay).
    per_host_delay_s: float = Field(0.0, ge=0)
    # The crawler reads whole documents (PDFs, long manuals) off the answer's critical path, so it waits
    # longer and reads more per page than a web search does.
    crawl_timeout_s: float = 15.0
    crawl_max_bytes: int = 10_000_000


# Where the fetch settings were before [fetch], read for one release: (table, old key) -> fetch key.
OLD_FETCH_KEYS: dict[tuple[str, str], str] = {
    ("crawl", "user_agent"): "user_agent",
    ("crawl", "allow_private"): "allow_private",
    ("crawl", "allowed_networks"): "allowed_networks",
    ("crawl", "timeout_s"): "crawl_timeout_s",
    ("crawl", "max_bytes"): "crawl_max_bytes",
    **{
        ("search.reader", key): key
        for key in (
            "user_agent",
            "allow_private",
            "allowed_networks",
            "timeout_s",
            "max_bytes",
            "max_redirects",
            "concurrency",
            "per_host_concurrency",
            "per_host_delay_s",
        )
    },
}


def moved_to_fetch(data: Any) -> Any:
    """``data`` (the whole config) with the old fetch keys of ``[crawl]`` and ``[search.reader]`` read as
    their ``[fetch]`` keys, for one more release, each with a FutureWarning naming the new key. A key
    written in ``[fetch]`` wins; two old keys that now are one key must agree."""
    if not isinstance(data, dict) or not isinstance(data.get("fetch", {}), dict):
        return data
    data = dict(data)
    fetch = dict(data.get("fetch", {}))
    found: dict[str, tuple[str, Any]] = {}  # fetch key -> (the old key that gave it, its value)
    for (table, old), new in OLD_FETCH_KEYS.items():
        section, _, sub = table.partition(".")
        outer = data.get(section)
        inner = outer.get(sub) if sub and isinstance(outer, dict) else outer
        if not isinstance(inner, dict) or old not in inner:
            continue
        inner = dict(inner)
        value = inner.pop(old)
        if sub:
            rest = {k: v for k, v in outer.items() if k != sub}  # type: ignore[union-attr]
            data[section] = {**rest, sub: inner} if inner else rest
        else:
            data[section] = inner
        warnings.warn(
            f"setting {table}.{old} is deprecated and goes away in the next release; write fetch.{new}",
            FutureWarning,
            stacklevel=2,
        )
        if new in found and found[new][1] != value and new not in fetch:
            raise GroundglassError(
                f"the settings {found[new][0]} and {table}.{old} differ, and both are fetch.{new} now",
                f"write fetch.{new} once in the config (it applies to every fetch) and remove the old keys",
            )
        found.setdefault(new, (f"{table}.{old}", value))
    if found:
        data["fetch"] = {**{new: value for new, (_, value) in found.items()}, **fetch}
    return data
