"""Grounding the values of an answer, not its words.

A sentence that restates the question overlaps the sources as much as the question does, so word
overlap and embedding similarity call it supported whatever value it adds ("The default value of X
is false [1]"). What a sentence *adds* beyond the question is what needs a source:

* numbers and quantities (``1,000`` = ``1000`` = ``1k`` = ``one thousand``; ``10 MB`` = ``10MB``;
  ``0.5`` = ``.5``; a figure rounded from the source's, ``8,849 m`` from ``8,848.86 m``, passes);
* identifiers: ``snake_case``, ``dotted.names``, ``--flags``, ``CamelCase``, paths, URLs, versions
  such as ``3.11.2``, and ``code spans`` (each name and number in them);
* quoted text and capitalised names (not the sentence's first word);
* yes/no claims: ``true``/``false``, ``enabled``/``disabled``, ``on``/``off``, ``by default``,
  ``deprecated``, ``required``, ``optional`` (case-insensitive: ``True`` = ``true``).

:func:`check` looks for each of them in the text of the sources the sentence cites. A value that is
also in the question needs no source (asking about 1990 does not oblige a source to print "1990"),
with one exception: an identifier or version the question asks about is the subject of the claim,
so a source that never names it cannot support anything said about it (a setting that does not
exist, a future version). Numbers and yes/no words are common, so those must appear near the
sentence's other words: in a source sentence (a table row, a line of a config listing) that shares
a word with the claim. Figures that rarely occur by chance (three significant digits or more, a
decimal, a unit: "1961", "0.5", "30 seconds") may be anywhere in the cited sources.

Computed values are allowed where the sentence or the question says so: a total or a difference of
two source numbers next to words like "total", "difference" or "years after" (or for a "how long"
question), small counts for a "how many" question, and "two Nobel prizes" where the sources name a
Nobel prize exactly twice. Everything else a source does not print is reported unsupported.

:func:`restates_question` is the other half: a sentence whose words beyond the question's (and the
citation markers, and filler such as "described" or "mentioned") are none adds nothing: "The X of a
Y starts with [1][2]." The support check fails it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from groundglass.answer.querytext import literal_terms
from groundglass.answer.sentences import split_sentences as sentences_of_passage

# --- words -----------------------------------------------------------------------------------------

_STOP_WORDS = frozenset(
    """a an the and or but if then than that this these those there here of in on at to for from by with
    without about as into over under after before between during through is are was were be been being
    am do does did done has have had having it its it's they them their he him his she her we our you
    your i me my not no nor so such very can could would should will shall may might must also too
    which who whom whose what when where why how all any both each few more most other some own same
    only just per via according source sources use used uses using""".split()
)
# Words that report on the sources or the question instead of answering it.
_FILLER = frozenset(
    """answer answers question questions described describe describes mentioned mention mentions listed
    list given provided provide provides specified specify documented stated state states following
    information detail details refer refers see seen explained explain explains based context
    value values defined define defines called call named name set sets find found text page
    document documents documentation shown show shows known""".split()
)
_WORD = re.compile(r"[^\W_][\w'’-]*")
_MARKER = re.compile(r"\[\s*-?\d+(?:\s*,\s*-?\d+)*\s*\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|#{1,6})\s+")


def stem(word: str) -> str:
    """A crude stem, enough to match "starts" with "start" and "highest" with "high"."""
    w = word.lower().strip("'’-")
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    if (len(w) > 5 and w.endswith("es") and w[-3] in "sxz") or w.endswith(("ches", "shes")):
        return w[:-2]  # "boxes", "matches"; but "adventures" -> "adventure", as "adventure" stays
    for suffix in ("ing", "est", "ed", "er", "ly", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix) and not w.endswith("ss"):
            return w[: -len(suffix)]
    return w


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(_MARKER.sub(" ", text))]


def content_stems(text: str) -> set[str]:
    """Stems of the words that carry content: stop words dropped."""
    out = set()
    for w in words(text):
        lw = w.lower()
        if lw in _STOP_WORDS or (len(lw) < 2 and not lw.isdigit()):
            continue
        out.add(stem(lw))
    return out


def clean(sentence: str) -> str:
    """The sentence without citation markers and list bullets."""
    return " ".join(_MARKER.sub(" ", _BULLET.sub("", sentence)).split())


def restates_question(sentence: str, question: str) -> bool:
    """True when ``sentence`` adds no word beyond the question's, the markers and filler words.

    A verbatim term the question lacks (``%f``, ``--force``, ``os.path.join``) is new content even
    when its letters are too short to count as a word."""
    text = clean(sentence)
    if set(literal_terms(text)) - set(literal_terms(question)):
        return False
    novel = content_stems(text) - content_stems(question)
    return not {w for w in novel if w not in _FILLER and stem(w) not in _FILLER_STEMS}


_FILLER_STEMS = frozenset(stem(w) for w in _FILLER)

# --- numbers ---------------------------------------------------------------------------------------

_UNITS = {
    "%": "%",
    "percent": "%",
    "per cent": "%",
    "pct": "%",
    "b": "byte",
    "byte": "byte",
    "bytes": "byte",
    "kb": "kb",
    "kib": "kb",
    "kilobyte": "kb",
    "kilobytes": "kb",
    "mb": "mb",
    "mib": "mb",
    "megabyte": "mb",
    "megabytes": "mb",
    "gb": "gb",
    "gib": "gb",
    "gigabyte": "gb",
    "gigabytes": "gb",
    "tb": "tb",
    "tib": "tb",
    "terabyte": "tb",
    "terabytes": "tb",
    "ms": "ms",
    "millisecond": "ms",
    "milliseconds": "ms",
    "msec": "ms",
    "µs": "us",
    "us": "us",
    "microsecond": "us",
    "microseconds": "us",
    "ns": "ns",
    "nanosecond": "ns",
    "nanoseconds": "ns",
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
    "m": "m",
    "metre": "m",
    "metres": "m",
    "meter": "m",
    "meters": "m",
    "km": "km",
    "kilometre": "km",
    "kilometres": "km",
    "kilometer": "km",
    "kilometers": "km",
    "km2": "km2",
    "km²": "km2",
    "mi2": "mi2",
    "mi²": "mi2",
    "m2": "m2",
    "m²": "m2",
    "cm": "cm",
    "mm": "mm",
    "ft": "ft",
    "feet": "ft",
    "foot": "ft",
    "mi": "mi",
    "mile": "mi",
    "miles": "mi",
    "kg": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "lb": "lb",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "hz": "hz",
    "khz": "khz",
    "mhz": "mhz",
    "ghz": "ghz",
    "px": "px",
    "pixel": "px",
    "pixels": "px",
    "pt": "pt",
    "°c": "°c",
    "°f": "°f",
}
_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "dozen": 12,
    "twice": 2,
    "once": 1,
    "single": 1,
    "double": 2,
    "triple": 3,
    "half": 0.5,
}
# "one" is more often a pronoun than a count ("one of the modules"), "once" and "single" too: in an
# answer they are not claims; in a source they still count as evidence.
_NOT_CLAIMS = {"one", "once", "single", "half", "double"}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:(?:st|nd|rd|th)\b)?"
    r"(?P<unit>\s?(?:per cent|[a-zA-Zµ°%]+[23²³]?(?![\w²³])|%))?"
)
_NUMBER_WORD = re.compile(
    r"\b("
    + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
    + r")(?:-(one|two|three|four|five|six|seven|eight|nine))?\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:about|approximately|approx\.?|around|roughly|nearly|almost|over|some|"
    r"more than|less than|under|up to|close to|estimated)\s*$|~\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Number:
    value: float
    unit: str | None  # canonical unit ("mb", "s", "%"), None when none or not a unit
    text: str  # as written
    precision: float  # the rounding step the writer used: 1 for "8,849", 1e6 for "14 million"
    start: int = 0


def _precision(digits: str, scale: float, hedged: bool) -> float:
    if "." in digits:
        return 10.0 ** -len(digits.split(".")[1]) * scale
    step = 1.0
    if hedged or scale > 1:  # "about 1,900", "14 million": trailing zeros are rounding
        stripped = digits.replace(",", "")
        zeros = len(stripped) - len(stripped.rstrip("0"))
        step = 10.0**zeros if stripped.strip("0") else 1.0
    return step * scale


def numbers(text: str, *, claims: bool = False) -> list[Number]:
    """The numbers of ``text`` with their units. ``claims``: as an answer states them (pronoun-like
    number words left out)."""
    out: list[Number] = []
    for m in _NUMBER.finditer(text):
        digits = m.group("num")
        value = float(digits.replace(",", ""))
        unit_text = (m.group("unit") or "").strip()
        key = unit_text.lower()
        scale, unit = 1.0, None
        if key in _SCALES and not (key == "k" and m.group("unit").startswith(" ")):
            scale = _SCALES[key]
            rest = text[m.end() :]
            following = re.match(r"\s?([a-zA-Z%]+)\b", rest)
            if following and following.group(1).lower() in _UNITS:
                unit = _UNITS[following.group(1).lower()]
        elif key in _UNITS and not (key == "s" and not m.group("unit").startswith(" ")):
            unit = _UNITS[key]  # "30 s" is seconds, "1990s" a decade
        hedged = bool(_HEDGE.search(text[max(0, m.start() - 16) : m.start()]))
        shown = m.group(0).strip() if unit or scale > 1 else digits
        out.append(Number(value * scale, unit, shown, _precision(digits, scale, hedged), m.start()))
    for m in _NUMBER_WORD.finditer(text):
        word = m.group(1).lower()
        if claims and word in _NOT_CLAIMS and not m.group(2):
            continue
        value = _NUMBER_WORDS[word] + (_NUMBER_WORDS[m.group(2).lower()] if m.group(2) else 0)
        after = re.match(r"\s?([a-zA-Z%]{3,})\b", text[m.end() :])  # "five seconds", "two million"
        scale = _SCALES.get(after.group(1).lower(), 1.0) if after else 1.0
        unit = _UNITS.get(after.group(1).lower()) if after else None
        out.append(Number(value * scale, unit, m.group(0), scale, m.start()))
    return out


def same_number(claim: Number, evidence: Number) -> bool:
    """Does ``evidence`` (from a source) state ``claim``'s figure, at the claim's precision?"""
    if claim.unit and evidence.unit and claim.unit != evidence.unit:
        return False
    if math.isclose(claim.value, evidence.value, rel_tol=1e-9, abs_tol=1e-12):
        return True
    step = claim.precision
    if step <= 0:
        return False
    if step >= 1 and abs(claim.value) < 10 and not claim.unit:
        # a bare single digit is a setting, a level, a version ("protocol 4", "level 9"), not a rounded
        # measurement: "3.8" in a source does not say "4"
        return False
    return math.isclose(round(evidence.value / step) * step, claim.value, rel_tol=1e-9, abs_tol=step * 1e-6)


# --- identifiers, code, names, yes/no ----------------------------------------------------------------

_CODE = re.compile(r"`+([^`]+?)`+")
_URL = re.compile(r"\bhttps?://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"]")
_PATH = re.compile(r"(?<![\w/.])(?:~|\.{1,2})?/(?:[\w.\-]+/)*[\w.\-]+|(?<![\w/])[\w.\-]+/[\w.\-/]*\.\w+")
_FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
_VERSION = re.compile(r"(?<![\w.])v?\d+(?:\.\d+){2,}(?![\w.]*\w)|(?<![\w.])v\d+(?:\.\d+)+\b")
_DOTTED = re.compile(r"(?<![\w.])[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+(?:\(\))?")
_SNAKE = re.compile(r"(?<![\w.])_*[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+_*(?:\(\))?|(?<![\w.])__\w+__")
_CAMEL = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b")
_CALL = re.compile(r"(?<![\w.])[A-Za-z_]\w*\(\)")
_HYPHENATED = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-\d[\w-]*")  # UTF-8, SHA-256, x86-64
_QUOTED = re.compile(r"\"([^\"]{2,60})\"|“([^”]{2,60})”|(?<!\w)'([^']{2,60})'(?!\w)")
_CAPITALISED = re.compile(r"\b(?:[A-Z][\w’'-]*)")
_VERSION_CONTEXT = re.compile(r"(?:\b(?:version|release|python|v)\s*|\b[A-Z][\w+-]*\s+)$", re.IGNORECASE)
_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")

_POLARITY = {
    "true": "yes",
    "yes": "yes",
    "enabled": "yes",
    "on": "yes",
    "false": "no",
    "no": "no",
    "disabled": "no",
    "off": "no",
}
_POLARITY_CLAIM = re.compile(
    r"\b(true|false|enabled|disabled|deprecated|required|optional|mandatory|"
    r"by default)\b|\b(?:is|are|be|set to|defaults to|turned|switched)\s+(on|off)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Value:
    kind: str  # number | identifier | version | code | quoted | name | polarity
    text: str  # as written in the answer


@dataclass
class Check:
    """What :func:`check` found for one sentence."""

    unsupported: list[str] = field(default_factory=list)  # values no cited source holds
    restates_question: bool = False  # adds nothing beyond the question
    values: list[str] = field(default_factory=list)  # every value it added (or named) that was checked

    @property
    def ok(self) -> bool:
        return not self.unsupported and not self.restates_question


def _norm_ident(text: str) -> str:
    return text.strip("`'\".,;:!?()[]{}").removesuffix("()").lower()


def identifiers(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of every identifier-like span: URLs, paths, flags, versions, dotted names,
    snake_case, CamelCase, calls. Longer spans win over the parts they contain."""
    spans: list[tuple[int, int, str, str]] = []
    for kind, pattern in (
        ("identifier", _URL),
        ("identifier", _PATH),
        ("version", _VERSION),
        ("identifier", _DOTTED),
        ("identifier", _SNAKE),
        ("identifier", _FLAG),
        ("identifier", _CAMEL),
        ("identifier", _CALL),
        ("identifier", _HYPHENATED),
    ):
        for m in pattern.finditer(text):
            token = m.group(0).rstrip(".")
            if kind == "identifier" and pattern is _DOTTED and all(len(p) <= 1 for p in token.split(".")):
                continue  # "e.g", "i.e", "U.S"
            if pattern is _DOTTED and re.fullmatch(r"[A-Za-z]{1,4}\.[A-Z][a-z]*", token):
                continue  # "in 1989.It": a missing space, not a name
            if any(a <= m.start() and m.start() + len(token) <= b for a, b, _, _ in spans):
                continue
            spans.append((m.start(), m.start() + len(token), kind, token))
    return [(kind, token) for _, _, kind, token in sorted(spans)]


def _mask(text: str, spans: Iterable[str]) -> str:
    for s in sorted(set(spans), key=len, reverse=True):
        text = text.replace(s, " " * len(s))
    return text


def values_of(sentence: str) -> list[Value]:
    """The checkable values of a sentence (markers and bullets already removed)."""
    out: list[Value] = []
    codes = [m.group(1).strip() for m in _CODE.finditer(sentence)]
    out += [Value("code", c) for c in codes if c]
    rest = _CODE.sub(lambda m: " " * len(m.group(0)), sentence)
    idents = identifiers(rest)
    out += [Value(kind, token) for kind, token in idents]
    rest = _mask(rest, [t for _, t in idents])
    for m in _DECIMAL.finditer(rest):  # "Python 3.15": a version the question may ask about
        if _VERSION_CONTEXT.search(rest[: m.start()]):
            out.append(Value("version", m.group(0)))
    out += [Value("number", n.text) for n in numbers(rest, claims=True)]
    for m in _QUOTED.finditer(rest):
        quoted = next(g for g in m.groups() if g)
        out.append(Value("quoted", quoted.strip()))
    first = True
    for m in _CAPITALISED.finditer(rest):
        word = m.group(0).strip("'’-")
        is_first = first and not rest[: m.start()].strip(" \"'“‘(*#")
        first = False
        if is_first or len(word) < 2 or word.lower() in _STOP_WORDS or word == "I":
            continue
        if word.lower() in _POLARITY or word.lower() in _UNITS or word.lower() in _SCALES:
            continue  # True / False are yes/no claims (below), MB and KB units of a number
        out.append(Value("name", word))
    for m in _POLARITY_CLAIM.finditer(rest):
        out.append(Value("polarity", (m.group(1) or m.group(2)).lower()))
    return out


# --- the sources' side -------------------------------------------------------------------------------


@dataclass
class Evidence:
    """The cited sources' text, prepared once for the many lookups of :func:`check`."""

    text: str  # all of it, lower-cased, whitespace collapsed
    sentences: list[str]  # lower-cased
    sentence_stems: list[set[str]]
    sentence_numbers: list[list[Number]]
    stems: set[str]
    polarity: list[set[str]]  # per sentence: the yes/no classes and the polarity words it holds

    @classmethod
    def of(cls, texts: Sequence[str]) -> Evidence:
        sentences: list[str] = []
        for t in texts:
            sentences += sentences_of_passage(t)
        lowered = [" ".join(s.split()).lower() for s in sentences]
        stems = [content_stems(s) for s in sentences]
        polarity = []
        for s in lowered:
            found = set()
            for w in _WORD.findall(s):
                if w in _POLARITY:
                    found.add(_POLARITY[w])
                found.add(w)
            if "default" in s:
                found.add("by default")
            polarity.append(found)
        return cls(
            text=" ".join(" ".join(texts).split()).lower(),
            sentences=lowered,
            sentence_stems=stems,
            sentence_numbers=[numbers(s) for s in sentences],
            stems=set().union(*stems) if stems else set(),
            polarity=polarity,
        )

    def windows(self, anchors: set[str], radius: int = 0) -> list[int]:
        """Indices of the sentences within ``radius`` of one that holds an anchor stem (all of them
        when there are no anchors)."""
        if not anchors:
            return list(range(len(self.sentences)))
        hits = [i for i, s in enumerate(self.sentence_stems) if s & anchors]
        near: set[int] = set()
        for i in hits:
            near.update(range(max(0, i - radius), min(len(self.sentences), i + radius + 1)))
        return sorted(near)

    def contains_term(self, term: str) -> bool:
        """``term`` (lower-cased) occurs as a whole token in the text."""
        term = " ".join(term.split())
        if not term:
            return True
        pattern = r"(?<![\w])" + re.escape(term) + r"(?![\w])"
        return re.search(pattern, self.text) is not None


def _identifier_found(token: str, evidence: Evidence) -> bool:
    norm = _norm_ident(token)
    if evidence.contains_term(norm):
        return True
    # "json.dumps" when the page says "dumps(obj)" in the json module's section; "--no-cache" as
    # "no-cache": every part of it must still be there.
    parts = [p for p in re.split(r"[./\\:]+|^-+", norm) if p]
    return len(parts) > 1 and all(evidence.contains_term(p) for p in parts)


def _code_found(code: str, evidence: Evidence) -> bool:
    if evidence.contains_term(code.lower()):
        return True
    names = [t for t in re.findall(r"[A-Za-z_][\w]*", code) if len(t) > 1]
    nums = numbers(code)
    return all(evidence.contains_term(n.lower()) for n in names) and all(
        any(same_number(n, e) for ns in evidence.sentence_numbers for e in ns) for n in nums
    )


def _name_found(word: str, evidence: Evidence) -> bool:
    """The name, or a longer word it begins ("Democrat" in "Democratic Party")."""
    w = word.lower()
    if evidence.contains_term(w) or stem(word) in evidence.stems:
        return True
    return len(w) >= 5 and re.search(r"(?<![\w])" + re.escape(w), evidence.text) is not None


def _quoted_found(quoted: str, evidence: Evidence) -> bool:
    plain = " ".join(re.findall(r"\w+", quoted.lower()))
    return (
        evidence.contains_term(quoted.lower())
        or evidence.contains_term(plain)
        or plain in " ".join(re.findall(r"\w+", evidence.text))
    )


_ARITHMETIC = re.compile(
    r"\b(?:total|sum|combined|together|difference|apart|after|later|before|earlier|"
    r"older|younger|longer|shorter|more than|fewer than|less than|aged?|old|"
    r"between|span|spanned|lasted|gap|increase|decrease)\b",
    re.IGNORECASE,
)
_COUNT_QUESTION = re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b", re.IGNORECASE)
_ARITHMETIC_QUESTION = re.compile(r"\bhow (?:long|old|much|far)\b", re.IGNORECASE)


def _counted(claim: Number, sentence: str, evidence: Evidence) -> bool:
    """ "two Nobel prizes" where the sources name a Nobel prize exactly twice: a count of what they say."""
    after = sentence[claim.start + len(claim.text) :]
    following = [stem(w) for w in _WORD.findall(after)[:2] if w.lower() not in _STOP_WORDS]
    tokens = [stem(w) for w in _WORD.findall(evidence.text)]
    return any(tokens.count(w) == int(claim.value) for w in following)


def distinctive(n: Number) -> bool:
    """A figure unlikely to be in a source by chance: three or more significant digits, a decimal, a
    unit or a scale ("8,849", "0.5", "30 seconds", "2 million"). Small bare integers are everywhere."""
    significant = n.text.replace(",", "").replace(".", "").lstrip("0").rstrip("0")
    return len(significant) >= 3 or "." in n.text or n.unit is not None or n.precision > 1


def _number_found(claim: Number, sentence: str, question: str, evidence: Evidence, near: list[int]) -> bool:
    everywhere = range(len(evidence.sentences)) if distinctive(claim) else near
    if any(same_number(claim, e) for i in everywhere for e in evidence.sentence_numbers[i]):
        return True
    small = claim.value == int(claim.value) and 0 <= claim.value <= 20
    if small and _COUNT_QUESTION.search(question):
        return True  # counted from a list in the sources
    if small and claim.value >= 2 and _counted(claim, sentence, evidence):
        return True
    if _ARITHMETIC.search(sentence) or _ARITHMETIC_QUESTION.search(question):
        pool = sorted({e.value for ns in evidence.sentence_numbers for e in ns})[:300]
        target = claim.value
        for i, a in enumerate(pool):
            for b in pool[i + 1 :]:
                if math.isclose(a + b, target) or math.isclose(abs(b - a), target):
                    return True
    return False


def check(
    sentence: str, question: str, cited_texts: Sequence[str], evidence: Evidence | None = None
) -> Check:
    """Which values of ``sentence`` (an answer sentence, markers allowed) the ``cited_texts`` do not
    hold, and whether it says anything beyond ``question``. ``evidence``: :meth:`Evidence.of` the same
    texts, when the caller checks many sentences against them."""
    text = clean(sentence)
    result = Check(restates_question=restates_question(text, question))
    if not text:
        return result
    evidence = evidence or Evidence.of(cited_texts)
    asked = {(v.kind, _norm_ident(v.text)) for v in values_of(question)}
    asked_numbers = numbers(question)
    asked_stems = content_stems(question)
    claimed = values_of(text)
    number_claims = numbers(_mask(_CODE.sub(" ", text), [t for _, t in identifiers(text)]), claims=True)
    # Anchors: the sentence's content words other than its values (the subject the values are about).
    value_stems = {stem(w) for v in claimed if v.kind == "polarity" for w in words(v.text)}
    anchors = {w for w in content_stems(text) - value_stems if w not in _FILLER_STEMS and not w.isdigit()}
    near = evidence.windows(anchors)
    for v in claimed:
        key = (v.kind, _norm_ident(v.text))
        from_question = key in asked or (v.kind in ("name", "polarity") and stem(v.text) in asked_stems)
        if v.kind in ("identifier", "version"):  # asked about or added: a source must name it
            found = _identifier_found(v.text, evidence)
        elif v.kind == "code":
            found = _identifier_found(v.text, evidence) if from_question else _code_found(v.text, evidence)
        elif from_question or v.kind == "number":
            continue  # numbers are checked below, with their units
        elif v.kind == "quoted":
            found = _quoted_found(v.text, evidence)
        elif v.kind == "name":
            found = _name_found(v.text, evidence)
        else:  # polarity: the same yes/no class (or the word itself) near the claim's subject
            cls = _POLARITY.get(v.text, v.text)
            found = any(cls in evidence.polarity[i] or v.text in evidence.polarity[i] for i in near)
        result.values.append(v.text)
        if not found:
            result.unsupported.append(v.text)
    for n in number_claims:
        # the question's own figure, said again; only the same value counts: rounding it would let
        # "protocol version 4" pass unchecked as the "3.8" of "... starting with Python 3.8?"
        if any(math.isclose(n.value, q.value, rel_tol=1e-9, abs_tol=1e-12) for q in asked_numbers):
            continue
        result.values.append(n.text)
        if not _number_found(n, text, question, evidence, near):
            result.unsupported.append(n.text)
    result.unsupported = list(dict.fromkeys(result.unsupported))
    return result


@lru_cache(maxsize=64)
def _evidence_cached(texts: tuple[str, ...]) -> Evidence:
    return Evidence.of(texts)


def evidence_for(texts: Sequence[str]) -> Evidence:
    """:meth:`Evidence.of`, cached for repeated checks against the same cited sources."""
    return _evidence_cached(tuple(texts))
