"""A country code in the forms search services take: its English name (Tavily) and a locale, a
language and the country together (SearXNG's ``fr-FR``, DuckDuckGo's ``fr-fr``).

The names and the languages spoken in each country come from babel (CLDR's data), not from a table
kept here. A country's locale uses the asker's language filter when there is one, else the country's
most spoken official language (CLDR orders them by population).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=512)
def country_name(country: str) -> str | None:
    """``"US"`` -> ``"United States"``; None for a code CLDR does not know."""
    from babel import Locale

    return Locale("en").territories.get(country.upper())


@lru_cache(maxsize=512)
def country_language(country: str) -> str | None:
    """The most spoken official language of ``country`` (ISO 639-1 where it has one), or None."""
    from babel.languages import get_official_languages

    languages = get_official_languages(country.upper(), de_facto=True)
    return languages[0].split("_", 1)[0] if languages else None


def country_locale(country: str, languages: tuple[str, ...] = ()) -> str | None:
    """``("CH", ("fr",))`` -> ``"fr-CH"``; ``("DE", ())`` -> ``"de-DE"``; None when no language is known."""
    language = languages[0] if languages else country_language(country)
    return f"{language}-{country.upper()}" if language else None
