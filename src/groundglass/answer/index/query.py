"""Query-side text helpers: the FTS5 MATCH expression for a question, and display snippets."""

from __future__ import annotations

import re

from groundglass.answer.sentences import split_sentences

# Function words that match nearly every passage: dropping them from the MATCH expression keeps BM25
# fast at 100k chunks without changing its ranking much (their IDF is close to zero anyway).
_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves also many much one ones s t
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 32


def query_terms(query: str) -> list[str]:
    """Distinct lower-case words of ``query`` without stopwords (all words if only stopwords)."""
    words = [w.lower() for w in _WORD.findall(query)]
    content = [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    chosen = content or words
    return list(dict.fromkeys(chosen))[:MAX_TERMS]


def fts_match(query: str) -> str | None:
    """An FTS5 MATCH expression: any of the query's terms (quoted, so no FTS syntax leaks through)."""
    terms = query_terms(query)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def make_snippet(text: str, query: str, max_chars: int = 280) -> str:
    """The sentences of ``text`` that best match ``query``, about ``max_chars`` long."""
    sentences = split_sentences(text)
    if not sentences:
        return text[:max_chars]
    terms = set(query_terms(query))

    def overlap(s: str) -> int:
        return len(terms & {w.lower() for w in _WORD.findall(s)})

    best = max(range(len(sentences)), key=lambda i: (overlap(sentences[i]), -i))
    out = sentences[best]
    j = best + 1
    while j < len(sentences) and len(out) + 1 + len(sentences[j]) <= max_chars:
        out += " " + sentences[j]
        j += 1
    if len(out) > max_chars:
        cut = out[:max_chars].rsplit(" ", 1)[0]
        out = cut.rstrip(",;:") + "…"
    return out
