"""The plan without a model: a comparison or a two-part question split into its searches.

Used when the model fails or writes nothing usable, and by effort levels that do not plan, so a
two-part question still reads the pages of both parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from groundglass.answer import querytext
from groundglass.answer.planner.steps import Plan, SubQuery, clean_query

_COMPARISON = re.compile(
    r"^(?P<head>(?:which|who|what)\b[^,]*?),?\s+(?P<a>[^,]+?)\s+or\s+(?P<b>[^,?]+?)\s*\??$", re.IGNORECASE
)
_VERSUS = re.compile(r"^(?P<a>.+?)\s+(?:vs\.?|versus)\s+(?P<b>.+?)\s*\??$", re.IGNORECASE)
_COMPARE = re.compile(
    r"^(?:compare|what(?:'s| is| are) the differences? between|how does)\s+(?P<a>.+?)\s+(?:and|with|to|"
    r"compare to|differ from)\s+(?P<b>.+?)\s*\??$",
    re.IGNORECASE,
)
_QUESTION_START = (
    "who",
    "what",
    "when",
    "where",
    "which",
    "why",
    "how",
    "did",
    "does",
    "do",
    "is",
    "was",
    "are",
    "were",
    "has",
    "have",
    "can",
    "in",
)
_AND_QUESTION = re.compile(r",?\s+and\s+(?=(?:" + "|".join(_QUESTION_START) + r")\b)", re.IGNORECASE)
_HEAD_WORDS = re.compile(
    r"^(?:which|who|what)\s+(?:one\s+)?(?:is|was|are|were|has|had|did|does)?\s*", re.IGNORECASE
)


def _steps(queries: Iterable[str], question: str, max_steps: int) -> list[SubQuery]:
    out: list[SubQuery] = []
    seen: set[str] = set()
    for q in queries:
        q = clean_query(q.strip(" ,;?"))
        if len(q) < 3 or querytext.normalize(q) in seen:
            continue
        seen.add(querytext.normalize(q))
        out.append(SubQuery(f"s{len(out) + 1}", q, []))
    return out[:max_steps] if len(out) > 1 else [SubQuery("s1", question, [])]


def part_queries(question: str, *, as_asked: bool = False) -> list[str]:
    """The question's parts as searches, without a model: two for "X and Y" questions and
    comparisons (see :func:`fallback_plan`), else []. Effort without planning searches these beside
    the question itself, so a two-part question reads the pages of both parts. ``as_asked`` leaves
    out the earlier part's names that a search for a referring part gets ("what did it cost" + "the
    Eiffel Tower"), for parts shown to the model or the user as questions."""
    steps = fallback_plan(question, 2, as_asked=as_asked).steps
    return [s.query for s in steps] if len(steps) > 1 else []


def fallback_plan(question: str, max_steps: int, *, reason: str = "", as_asked: bool = False) -> Plan:
    """A plan without a model: split comparisons and "... and <question word> ..." questions, else one
    step, the question as asked."""
    q = " ".join(question.split())
    queries: list[str] = []
    if max_steps > 1:
        m = _COMPARISON.match(q)
        if m and len(querytext.words(m.group("a"))) <= 8 and len(querytext.words(m.group("b"))) <= 8:
            head = _HEAD_WORDS.sub("", m.group("head")).strip()
            queries = [f"{m.group('a')} {head}".strip(), f"{m.group('b')} {head}".strip()]
        elif (m := _COMPARE.match(q) or _VERSUS.match(q)) is not None:
            queries = [m.group("a"), m.group("b")]
        else:
            parts = _AND_QUESTION.split(q)
            if len(parts) > 1 and all(len(querytext.words(p)) >= 3 for p in parts):
                subject = querytext.entities(parts[0])
                queries = [parts[0]]
                for p in parts[1:]:
                    referring = querytext.is_referring(p) and not as_asked
                    extra = [e for e in subject if e.lower() not in p.lower()] if referring else []
                    queries.append(f"{p.strip(' ?')} {' '.join(extra)}".strip())
        if not queries:
            queries = split_coordinated(q)
    steps = _steps(queries, q, max_steps) if queries else [SubQuery("s1", q, [])]
    return Plan(steps, "fallback", reason=reason)


_AUXILIARY = frozenset("is are was were do does did has have had can".split())
_QUOTED = re.compile(r"^['\"‘“].+['\"’”][,.;:]?$")


def names_something(word: str, first: bool) -> bool:
    """Whether ``word`` carries a name: a verbatim term (``SMTP.connect``, ``-m``), a quoted token, a
    number, a capitalised word (not the question's first), or a possessive (``smtplib's``)."""
    bare = word.strip("?,;:")
    return bool(
        querytext.literal_terms(bare)
        or _QUOTED.match(bare)
        or bare[:1].isdigit()
        or (bare[:1].isupper() and not first)
        or bare.lower().endswith(("'s", "’s"))
    )


def split_coordinated(question: str) -> list[str]:
    """One query per named thing when a question asks the same about two ("Which ports do
    smtplib's SMTP.connect and python -m http.server use by default?" -> "... do smtplib's SMTP.connect
    use by default", "... do python -m http.server use by default"), or two things that each carry
    their own head ("the default maxsize of functools.lru_cache and the default width of
    textwrap.wrap()" -> "What are the default maxsize of functools.lru_cache", "What are the default
    width of textwrap.wrap()"). Searched as one query, such a question finds the page of whichever
    name the search engine weighs more, and the answer misses the other half. [] when the question
    has no single "and" between two named things."""
    text = " ".join(question.split()).rstrip(" ?")
    halves = re.split(r",?\s+and\s+", text)
    if len(halves) != 2:
        return []
    left, right = halves[0].split(), halves[1].split()
    if len(left) < 2 or not right or right[0].lower() in _QUESTION_START:  # a second question: _AND_QUESTION
        return []
    # The left thing: the trailing words that are not stop words, from the first one that names something.
    start = len(left)
    while start > 0 and left[start - 1].lower() not in querytext.STOPWORDS:
        start -= 1
    while start < len(left) and not names_something(left[start], start == 0):
        start += 1
    if start >= len(left) or start == 0:
        return []
    head, thing_a = left[:start], left[start:]
    # The right thing: leading stop words dropped ("of zlib.compress()", "the default width of ...").
    skip = 0
    while skip < len(right) and right[skip].lower() in querytext.STOPWORDS:
        skip += 1
    body = right[skip:]
    named = [i for i, w in enumerate(body) if names_something(w, False)]
    if not named:
        return []
    before = body[: named[0]]
    if any(w.lower() in querytext.STOPWORDS for w in before):
        # "the default width of textwrap.wrap()": a phrase of its own; ask it with the question's opening.
        aux = next((i for i, w in enumerate(left) if w.lower() in _AUXILIARY), None)
        if aux is None:
            return []
        return [" ".join(left), " ".join(left[: aux + 1] + right)]
    run = 0
    while run < len(body) and body[run].lower() not in querytext.STOPWORDS:
        run += 1
    last = max(i for i in named if i < run) if any(i < run for i in named) else named[0]
    thing_b, tail = body[: last + 1], body[last + 1 :]
    return [" ".join(head + thing_a + tail), " ".join(head + thing_b + tail)]
