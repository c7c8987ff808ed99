"""Scoring of one answer to a documentation QA question, and the summary over a run.

Per answer (see :mod:`bench.docqa_data` for the question format):

- **declined**: the answer says it cannot answer (:func:`is_decline`: "I don't know", "the sources do
  not say ...", "could not find ...", "... does not exist"), or the pipeline flagged it as declined;
- **correct** (answerable questions): not declined, and every required item of the gold answer is in
  the answer text (any of its alternatives; markers ``[n]`` removed first);
- **cited pages**: the sources its markers point to, as documentation pages (URL -> path relative to
  the documentation root); a marker that points to no source counts as a citation of nothing;
- **gold cited**: the share of the gold pages among the cited pages; a single-page question's gold pages
  are alternatives (each states the fact), so citing any one of them counts in full;
- **citation precision**: the share of the cited pages that are gold pages (None without citations).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit

from bench.docqa_data import Question, matches

_MARKER = re.compile(r"\[(\d{1,6})\]")
# what a manual may be said not to have ("PostgreSQL does not have a setting named ..."); "... does not
# have a direct effect" is a claim, not a decline
_THING = (
    r"(?:parameter|option|function|flag|setting|argument|variable|method|command|dot-command|pragma|"
    r"attribute|field|directive|feature)"
)
_DECLINE = re.compile(
    r"\b(?:"
    r"i (?:do not|don't|don’t) know"
    r"|(?:could|can)(?:not|n't|n’t| not) (?:find|determine|answer|tell|say)"
    r"|unable to (?:find|determine|answer|locate)"
    r"|(?:do|does|did)(?: not|n't|n’t) (?:say|mention|state|specify|contain|provide|include|cover|document|"
    r"describe|list|exist|have (?:a|any|an|such) (?:\w+ ){0,2}" + _THING + r")"
    r"|(?:is|are)(?: not|n't|n’t) (?:mentioned|stated|specified|documented|provided|given|described|"
    r"available|listed|covered|included|found in the (?:\w+ )?(?:sources?|documentation|docs|context|text))"
    r"|no (?:information|mention|details?|such|documentation|data)"
    r"|not enough information|insufficient information"
    r"|(?:there is|there's) no (?:\w+ )?" + _THING + r")",
    re.IGNORECASE,
)


def strip_markers(text: str) -> str:
    return _MARKER.sub(" ", text)


def is_decline(text: str) -> bool:
    """Whether the answer text declines (says the sources or docs do not give the answer)."""
    return bool(_DECLINE.search(strip_markers(text))) or not strip_markers(text).strip()


def page_key(url: str, bases: Sequence[str]) -> str | None:
    """The documentation page a source URL names (relative to the root), or None for another URL.
    ``bases`` are the roots the pages are reachable under (the loopback site, the ``file://`` folder)."""
    url = urldefrag(url)[0]
    for base in bases:
        base = base.rstrip("/") + "/"
        if url.startswith(base):
            return unquote(urlsplit(url[len(base) :]).path) or None
    return None


def cited_pages(answer: str, source_urls: Sequence[str], bases: Sequence[str]) -> list[str | None]:
    """The distinct pages the answer's markers point to, in order of first use; a marker outside
    ``1..len(source_urls)`` or a source that is no documentation page gives None."""
    out: list[str | None] = []
    seen: set[str] = set()
    for m in _MARKER.finditer(answer):
        n = int(m.group(1))
        key = page_key(source_urls[n - 1], bases) if 1 <= n <= len(source_urls) else None
        marker = f"#{n}" if key is None else key
        if marker not in seen:
            seen.add(marker)
            out.append(key)
    return out


def correct(question: Question, answer: str, declined: bool = False) -> bool:
    if question.kind == "none" or declined:
        return False
    text = strip_markers(answer)
    return all(any(matches(alt, text) for alt in item) for item in question.answer)


def gold_cited(question: Question, cited: Sequence[str | None]) -> float:
    if question.kind == "single":
        return float(any(page in cited for page in question.gold_pages))
    return sum(page in cited for page in question.gold_pages) / len(question.gold_pages)


def citation_precision(question: Question, cited: Sequence[str | None]) -> float | None:
    if not cited:
        return None
    return sum(page in question.gold_pages for page in cited) / len(cited)


@dataclass
class Scored:
    id: str
    kind: str
    correct: bool
    declined: bool
    gold_cited: float
    precision: float | None
    cited: list[str | None]
    seconds: float


def score(
    question: Question,
    answer: str,
    source_urls: Sequence[str],
    bases: Sequence[str],
    seconds: float,
    flagged_declined: bool = False,
) -> Scored:
    declined = flagged_declined or is_decline(answer)
    cited = cited_pages(answer, source_urls, bases)
    answerable = question.kind != "none"
    return Scored(
        id=question.id,
        kind=question.kind,
        correct=correct(question, answer, declined),
        declined=declined,
        gold_cited=gold_cited(question, cited) if answerable else 0.0,
        precision=citation_precision(question, cited) if answerable else None,
        cited=cited,
        seconds=seconds,
    )


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return round(statistics.fmean(vals), 3) if vals else None


def summarize(rows: Sequence[Scored]) -> dict[str, Any]:
    """The table's figures for one pipeline in one mode."""
    single = [r for r in rows if r.kind == "single"]
    two = [r for r in rows if r.kind == "two"]
    none = [r for r in rows if r.kind == "none"]
    answerable = single + two
    seconds = [r.seconds for r in rows]
    return {
        "n": {"single": len(single), "two": len(two), "none": len(none)},
        "correct_single": _mean(float(r.correct) for r in single),
        "correct_two": _mean(float(r.correct) for r in two),
        "gold_cited_single": _mean(r.gold_cited for r in single),
        "gold_cited_two": _mean(r.gold_cited for r in two),
        "precision_single": _mean(r.precision for r in single if r.precision is not None),
        "precision_two": _mean(r.precision for r in two if r.precision is not None),
        "declines_none": sum(r.declined for r in none),
        "declines_answerable": sum(r.declined for r in answerable),
        "seconds_p50": round(statistics.median(seconds), 2) if seconds else None,
        "seconds_mean": round(statistics.fmean(seconds), 2) if seconds else None,
    }
