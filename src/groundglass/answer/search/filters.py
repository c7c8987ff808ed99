"""Search filters, enforced by us on every result whether or not the provider understood them.

- domains: Perplexity's ``search_domain_filter`` convention: ``["nasa.gov", "-reddit.com"]`` allows
  nasa.gov (and its subdomains) and denies reddit.com. With any allowed domain, only those pass.
  Checked on the result's URL before reading and on the page's final URL after redirects.
- recency: ``hour``, ``day``, ``week``, ``month``, ``year`` back from now.
- ``after`` / ``before``: publication dates (``YYYY-MM-DD`` or Perplexity's ``M/D/YYYY``), inclusive.
- ``updated_after`` / ``updated_before`` (Perplexity's ``last_updated_*_filter``): the day the page last
  changed, as the reader learns it (its modified-time metadata or ``Last-Modified`` header), inclusive.
  Known only once a page is read, so they are checked on read pages (:meth:`SearchFilters.check_updated`);
  a page that does not say when it changed is kept out, since Perplexity documents nothing for it and
  a filter that lets unknown dates through would not be one.
- languages: ISO 639-1 codes; a page passes when its language is one of them.
- location: where the asker is (Perplexity's ``user_location``). Not a filter: it rides here because
  it travels the same way, to every provider, and changes what a provider answers (so it is part of
  the cache key). Each provider passes on the parts it takes (``location_fields``) and ignores the
  rest; the failover records which provider used which parts.

A date is the page's own publication date when the reader finds one, else the provider's. A date
known only to the day counts as the whole day, so ``hour`` lets today's pages through. Results with
no date at all pass or not by ``search.undated``.

Date parsing is hand-written over the standard library (ISO 8601, RFC 2822, "March 5, 2024",
"3 days ago"): those are the shapes search APIs return, and a general parser (dateparser) would be
a heavy dependency for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from groundglass.domains import normalize_domain
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.search.images import ImageFilters

RECENCY: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=31),
    "year": timedelta(days=366),
}
MAX_DOMAINS = 20  # Perplexity's limit for search_domain_filter


@dataclass(frozen=True)
class When:
    """A point in time, or a whole day when only the date is known."""

    start: datetime
    end: datetime

    @property
    def day(self) -> str:
        return self.start.date().isoformat()


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _whole_day(d: date) -> When:
    start = datetime.combine(d, time.min, tzinfo=UTC)
    return When(start, start + timedelta(days=1) - timedelta(microseconds=1))


_RELATIVE = re.compile(r"^\s*(\d+)\s+(minute|hour|day|week|month|year)s?\s+ago\s*$", re.IGNORECASE)
_UNITS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
}
_TEXT_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%m/%d/%Y", "%Y/%m/%d", "%Y-%m")


def parse_when(value: Any, now: datetime | None = None) -> When | None:
    """The moment (or day) a provider or page date string means; None when it cannot be read."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = _aware(value)
        return When(dt, dt)
    if isinstance(value, date):
        return _whole_day(value)
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return _whole_day(date.fromisoformat(text))
        except ValueError:
            return None
    try:
        dt = _aware(datetime.fromisoformat(text))
        return When(dt, dt)
    except ValueError:
        pass
    m = _RELATIVE.match(text)
    if m:
        dt = (now or datetime.now(UTC)) - int(m.group(1)) * _UNITS[m.group(2).lower()]
        return When(dt, dt)
    try:
        dt = _aware(parsedate_to_datetime(text))
        return When(dt, dt)
    except (TypeError, ValueError, IndexError):
        pass
    for fmt in _TEXT_FORMATS:
        try:
            return _whole_day(datetime.strptime(text, fmt).date())
        except ValueError:
            continue
    return None


def parse_filter_date(value: Any, param: str) -> date | None:
    """A date given as a filter: ``YYYY-MM-DD`` or ``M/D/YYYY``; anything else is a clear error."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise GroundglassError(
        f"{param} {text!r} is not a date", "write it as YYYY-MM-DD or M/D/YYYY, e.g. 3/1/2025", param=param
    )


def host_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower().strip(".")
    return host[4:] if host.startswith("www.") else host


def _matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


@dataclass(frozen=True)
class Location:
    """Where the asker is. Every part is optional; ``country`` is an ISO 3166-1 alpha-2 code."""

    country: str | None = None
    region: str | None = None  # a state or province, as a name ("California") or code
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    timezone: str | None = None  # IANA, e.g. "America/Los_Angeles"

    FIELDS = ("country", "region", "city", "latitude", "longitude", "timezone")

    def given(self) -> tuple[str, ...]:
        """The names of the parts that are set."""
        return tuple(f for f in self.FIELDS if getattr(self, f) is not None)


@dataclass(frozen=True)
class SearchFilters:
    allow_domains: tuple[str, ...] = ()
    deny_domains: tuple[str, ...] = ()
    recency: str | None = None  # hour | day | week | month | year
    after: date | None = None
    before: date | None = None
    languages: tuple[str, ...] = ()
    location: Location | None = None
    # last_updated_*: checked on read pages only; not in the cache key, since no provider is told them
    updated_after: date | None = None
    updated_before: date | None = None
    # return_images: the images of the pages read, filtered so (None: no images); not in the cache key,
    # since providers answer the same either way
    images: ImageFilters | None = None
    # Perplexity's safe_search: only providers that filter adult content out are asked (in the key)
    safe_search: bool = False

    @classmethod
    def build(
        cls,
        domains: list[str] | tuple[str, ...] | None = None,
        recency: str | None = None,
        after: Any = None,
        before: Any = None,
        languages: list[str] | tuple[str, ...] | str | None = None,
        updated_after: Any = None,
        updated_before: Any = None,
    ) -> SearchFilters:
        """Checked filters from the API's / CLI's raw values (Perplexity's parameter names in errors)."""
        allow, deny = _domain_lists(domains)
        if recency is not None and recency not in RECENCY:
            raise GroundglassError(
                f"search_recency_filter {recency!r} is not one of {', '.join(RECENCY)}",
                "use hour, day, week, month or year",
                param="search_recency_filter",
            )
        after_d, before_d = _date_window(
            after, before, "search_after_date_filter", "search_before_date_filter"
        )
        updated_after_d, updated_before_d = _date_window(
            updated_after, updated_before, "last_updated_after_filter", "last_updated_before_filter"
        )
        return cls(
            tuple(allow),
            tuple(deny),
            recency,
            after_d,
            before_d,
            _language_codes(languages),
            updated_after=updated_after_d,
            updated_before=updated_before_d,
        )

    # --- what the filters ask ---------------------------------------------------------------------

    @property
    def has_dates(self) -> bool:
        return bool(self.recency or self.after or self.before)

    @property
    def has_updated(self) -> bool:
        """Whether a last-updated window is set (pages must then be read to be judged)."""
        return bool(self.updated_after or self.updated_before)

    def as_key(self) -> dict[str, Any]:
        """A stable description for the cache key (recency as its word, so the key does not age)."""
        return {
            "allow": sorted(self.allow_domains),
            "deny": sorted(self.deny_domains),
            "recency": self.recency,
            "after": self.after.isoformat() if self.after else None,
            "before": self.before.isoformat() if self.before else None,
            "languages": sorted(self.languages),
            # only when set, so that the keys of searches without a location stay what they were
            **(
                {"location": {f: getattr(self.location, f) for f in self.location.given()}}
                if self.location
                else {}
            ),
            **({"safe_search": True} if self.safe_search else {}),
        }

    def window(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """The earliest and latest publication moments allowed (None: open)."""
        now = now or datetime.now(UTC)
        start: datetime | None = None
        if self.recency:
            start = now - RECENCY[self.recency]
        if self.after:
            after = datetime.combine(self.after, time.min, tzinfo=UTC)
            start = max(start, after) if start else after
        end = datetime.combine(self.before, time.max, tzinfo=UTC) if self.before else None
        return start, end

    # --- checks: None means "passes", a string says why not -----------------------------------------

    def check_domain(self, url: str) -> str | None:
        host = host_of(url)
        for d in self.deny_domains:
            if _matches(host, d):
                return f"domain {host} is excluded by the domain filter (-{d})"
        if self.allow_domains and not any(_matches(host, d) for d in self.allow_domains):
            return f"domain {host} is not in the domain filter ({', '.join(self.allow_domains)})"
        return None

    def check_date(self, value: Any, *, undated: str = "drop", now: datetime | None = None) -> str | None:
        if not self.has_dates:
            return None
        when = parse_when(value, now)
        if when is None:
            return None if undated == "keep" else "no publication date, and a date filter is set"
        start, end = self.window(now)
        if start is not None and when.end < start:
            return f"published {when.day}, before the date filter's start ({start.date().isoformat()})"
        if end is not None and when.start > end:
            return f"published {when.day}, after the date filter's end ({end.date().isoformat()})"
        return None

    def check_updated(self, last_updated: str | None) -> str | None:
        """The page's ``last_updated`` day (ISO) against the last-updated window; no day: kept out."""
        if not self.has_updated:
            return None
        when = parse_when(last_updated)
        if when is None:
            return "the page does not say when it last changed, and a last_updated filter is set"
        if self.updated_after and when.start.date() < self.updated_after:
            return f"last updated {when.day}, before last_updated_after_filter ({self.updated_after})"
        if self.updated_before and when.start.date() > self.updated_before:
            return f"last updated {when.day}, after last_updated_before_filter ({self.updated_before})"
        return None

    def check_language(self, language: str | None) -> str | None:
        if not self.languages:
            return None
        if not language:
            return "language unknown, and a language filter is set"
        code = language.lower().replace("_", "-").split("-", 1)[0]
        if code not in self.languages:
            return f"language {code} is not in the language filter ({', '.join(self.languages)})"
        return None

    def check_result(
        self, url: str, date_value: Any, language: str | None, *, now: datetime | None = None
    ) -> str | None:
        """Before reading: what the provider already tells (an unknown date or language may still be
        learned from the page, so only a known one can fail here)."""
        reason = self.check_domain(url)
        if reason:
            return reason
        if date_value and parse_when(date_value, now) is not None:
            reason = self.check_date(date_value, now=now)
            if reason:
                return reason
        if language:
            return self.check_language(language)
        return None


def _domain_lists(domains: list[str] | tuple[str, ...] | None) -> tuple[list[str], list[str]]:
    """``search_domain_filter`` as (allowed, denied) domains: a leading ``-`` denies."""
    allow: list[str] = []
    deny: list[str] = []
    entries = list(domains or [])
    if len(entries) > MAX_DOMAINS:
        raise GroundglassError(
            f"search_domain_filter has {len(entries)} entries; at most {MAX_DOMAINS}",
            "list fewer domains",
            param="search_domain_filter",
        )
    for entry in entries:
        if not isinstance(entry, str):
            raise GroundglassError(
                "search_domain_filter entries must be strings",
                'e.g. ["nasa.gov", "-reddit.com"]',
                param="search_domain_filter",
            )
        target = deny if entry.strip().startswith("-") else allow
        domain = normalize_domain(entry.strip().lstrip("-"))
        if domain not in target:
            target.append(domain)
    return allow, deny


def _date_window(
    after: Any, before: Any, after_name: str, before_name: str
) -> tuple[date | None, date | None]:
    """Two date filters as dates; the first may not be later than the second."""
    after_d = parse_filter_date(after, after_name)
    before_d = parse_filter_date(before, before_name)
    if after_d and before_d and after_d > before_d:
        raise GroundglassError(
            f"{after_name} ({after_d}) is later than {before_name} ({before_d})",
            "swap or fix the dates",
            param=after_name,
        )
    return after_d, before_d


def _language_codes(languages: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """``search_language_filter`` as ISO 639 base codes (``en-GB`` -> ``en``), each once."""
    if isinstance(languages, str):
        languages = [languages]
    langs: list[str] = []
    for lang in languages or []:
        code = str(lang).strip().lower().replace("_", "-").split("-", 1)[0]
        if not re.fullmatch(r"[a-z]{2,3}", code):
            raise GroundglassError(
                f"search_language_filter entry {lang!r} is not a language code",
                'use ISO 639-1 codes like "en" or "de"',
                param="search_language_filter",
            )
        if code not in langs:
            langs.append(code)
    return tuple(langs)
