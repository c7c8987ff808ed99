"""Small word-level checks on questions and search queries: content words, named entities, references.

The query rewriter and the planner use them to judge what a small model wrote (does the rewrite keep
the follow-up's words? did it invent any?) and to build fallbacks without a model (the entities of
the previous turn). They are hand-written on purpose: a stop-word list and two regular expressions
answer these questions in microseconds, where an NLP pipeline (spaCy, NLTK data) would be another
model to ship offline for a few heuristics.
"""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing done down during each either else ever few for from
further get gets got had has have having here how i if in into is it its itself just let me more most
much my neither no nor not now of off on once only or other our ours out over own same say says shall
she should so some such tell than that the their theirs them themselves then there these they this
those through to too under until up upon us very was we were what whats when where which while who
whom whose why will with within without would yes yet you your yours he him his her hers
please give list name find show many kind type
""".split()
)

# Words that point back to something said earlier.
REFERRING = frozenset(
    """
he him his she her hers it its they them their theirs there that this these those then former latter
""".split()
)
_LEAD_INS = ("and ", "also ", "so ", "but ", "what about", "how about", "and?", "same ")

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")
_CAP_WORD = r"(?:[A-Z][\w'’\-.]*|\d[\w\-]*)"
_CONNECTOR = r"(?:of|the|de|da|del|di|du|van|von|der|la|le|and)"
_ENTITY = re.compile(rf"{_CAP_WORD}(?:\s+(?:{_CONNECTOR}\s+)*{_CAP_WORD})*")
_CITATION = re.compile(r"\s*\[\d+\]")
_SPACES = re.compile(r"\s+")
_DEFINITE = re.compile(r"\bthe\s+[a-z]{3,}", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-case words of ``text``."""
    return [w.lower().strip("'’-") for w in _WORD.findall(text)]


_SUFFIXES = ("ing", "ed", "es", "s", "d")


def stem(word: str) -> str:
    """A crude stem for matching word variants ("directed" ~ "director", "died" ~ "die"): a plural or
    past-tense ending removed, then the first five letters."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:5]


def content_words(text: str) -> list[str]:
    """Words of ``text`` that are not stop words, in order, without repeats."""
    out: list[str] = []
    for w in words(text):
        if w and w not in STOPWORDS and w not in out:
            out.append(w)
    return out


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}


# Terms a manual's reader types verbatim: format codes (%j), flags (-X, --verbose), dotted and
# snake_case names (os.path.join, exist_ok, __init__) and calls (len()). Word tokenizers drop or split
# them, so "%j" would match every row of a format-code table; they are matched as written instead.
_LITERAL = re.compile(r"(?<![\w%-])(?:%[A-Za-z]|--?[A-Za-z][\w-]*|\w+(?:\.\w+)+|\w*_\w+|\w+\(\))(?![\w])")


def literal_terms(text: str) -> list[str]:
    """The verbatim terms of ``text`` (format codes, flags, dotted/snake_case names, calls), in order."""
    return list(
        dict.fromkeys(
            m.group(0).rstrip(".")
            for m in _LITERAL.finditer(text)
            if not m.group(0).replace(".", "").isdigit()
        )
    )


def literal_hits(text: str, terms: list[str]) -> int:
    """How many of ``terms`` occur in ``text`` as whole tokens, case as written."""
    return sum(1 for t in terms if re.search(r"(?<![\w%-])" + re.escape(t) + r"(?![\w])", text))


def entities(text: str) -> list[str]:
    """Capitalised phrases ("William Shakespeare", "Tower of London") and numbers, in order, without
    repeats; sentence-initial question words and other stop words are not entities."""
    out: list[str] = []
    for m in _ENTITY.finditer(strip_citations(text)):
        phrase = m.group(0).strip(" .")
        tokens = phrase.split()
        while tokens and tokens[0].lower() in STOPWORDS:  # "What", "The", "In" at a sentence start
            tokens.pop(0)
        while tokens and tokens[-1].lower() in STOPWORDS:
            tokens.pop()
        phrase = " ".join(tokens)
        if phrase and phrase.lower() not in (e.lower() for e in out):
            out.append(phrase)
    return out


def has_lead_in(text: str) -> bool:
    """Whether ``text`` starts like a continuation: "and ...", "what about ...", "same ..."."""
    return text.strip().lower().startswith(_LEAD_INS)


def has_referring_word(text: str) -> bool:
    """Whether ``text`` holds a pronoun or ``there``/``that``/``then``... (words that point back)."""
    return any(w in REFERRING for w in words(text))


def has_definite_reference(text: str) -> bool:
    """Whether ``text`` speaks of "the <thing>" without naming anything ("When was the play written?"):
    in a follow-up, the thing is the one the conversation was about."""
    return bool(_DEFINITE.search(text)) and not entities(text)


def is_referring(text: str) -> bool:
    """Whether ``text`` leans on earlier turns: a pronoun or ``there``/``that``, a lead-in such as
    "and ..." or "what about ...", "the <thing>" without a name, or no content word at all."""
    return (
        has_lead_in(text)
        or has_referring_word(text)
        or has_definite_reference(text)
        or not content_words(text)
    )


def is_self_contained(text: str) -> bool:
    """A question that names what it is about: no referring words, a named entity, three words or more."""
    return not is_referring(text) and bool(entities(text)) and len(words(text)) >= 3


def normalize(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation (to compare queries)."""
    return _SPACES.sub(" ", text).strip().strip("?.!").strip().lower()


def strip_citations(text: str) -> str:
    """``text`` without ``[n]`` citation markers."""
    return _CITATION.sub("", text)


def first_sentence(text: str, max_chars: int = 240) -> str:
    """The first sentence of ``text`` (cut at ``max_chars`` on a word boundary), citations removed."""
    clean = _SPACES.sub(" ", strip_citations(text)).strip()
    m = re.search(r"(?<=[.!?])\s", clean)
    sentence = clean[: m.start()] if m else clean
    if len(sentence) > max_chars:
        sentence = sentence[:max_chars].rsplit(" ", 1)[0]
    return sentence
