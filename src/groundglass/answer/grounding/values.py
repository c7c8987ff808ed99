"""The checkable values of a sentence: what it adds that a source must hold.

Identifiers (URLs, paths, flags, versions, dotted names, snake_case, CamelCase, calls, backslash
commands, upper-case names of six or more characters), code spans,
numbers, quoted text, capitalised names and yes/no words. The words around them are left to
:mod:`.wording`; these are the parts that a restated question cannot make true.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from groundglass.answer.grounding.figures import SCALES, UNITS, numbers
from groundglass.answer.grounding.wording import STOP_WORDS

CODE = re.compile(r"`+([^`]+?)`+")
_URL = re.compile(r"\bhttps?://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"]")
_PATH = re.compile(r"(?<![\w/.])(?:~|\.{1,2})?/(?:[\w.\-]+/)*[\w.\-]+|(?<![\w/])[\w.\-]+/[\w.\-/]*\.\w+")
_FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
_VERSION = re.compile(r"(?<![\w.])v?\d+(?:\.\d+){2,}(?![\w.]*\w)|(?<![\w.])v\d+(?:\.\d+)+\b")
_DOTTED = re.compile(r"(?<![\w.])[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+(?:\(\))?")
_SNAKE = re.compile(r"(?<![\w.])_*[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+_*(?:\(\))?|(?<![\w.])__\w+__")
# CamelCase, also after an acronym (SSLVerifyDepth, LDAPCacheTTL); not a unit (GiB, MiB: see identifiers)
_CAMEL = re.compile(r"\b[A-Z]+[a-z0-9]+(?:[A-Z][a-z0-9]*)+\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b")
# a backslash command: psql's "\dt+", TeX's "\frac", a regex's "\d"
BACKSLASH = re.compile(r"(?<![\w\\])\\[A-Za-z][A-Za-z0-9_]*\+?")
_CALL = re.compile(r"(?<![\w.])[A-Za-z_]\w*\(\)")
# a shell's dot-command (sqlite3's ".dump", ".mode") or a file extension (".toml"): lower-case after the dot
_DOT_COMMAND = re.compile(r"(?<![\w.\\/~-])\.[a-z][a-z0-9_]+\b")
# An environment variable or constant (PYTHONJITLEVEL, SIGTERM); shorter capitals are acronyms
UPPER_NAME = re.compile(r"\b[A-Z][A-Z0-9]{5,}\b")
_HYPHENATED = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-\d[\w-]*")  # UTF-8, SHA-256, x86-64
_QUOTED = re.compile(r"\"([^\"]{2,60})\"|“([^”]{2,60})”|(?<!\w)'([^']{2,60})'(?!\w)")
_CAPITALISED = re.compile(r"\b(?:[A-Z][\w’'-]*)")
_VERSION_CONTEXT = re.compile(r"(?:\b(?:version|release|python|v)\s*|\b[A-Z][\w+-]*\s+)$", re.IGNORECASE)
# "PostgreSQL 19": a major version, said with the product's name (a whole number alone is a count)
_MAJOR_VERSION = re.compile(r"\b[A-Z][a-z]*[A-Z][A-Za-z]*\s+\d{1,3}\b(?![.,]?\d)")
_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")

POLARITY = {
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


# A limit said in words: "The maximum number of columns in a table is unlimited."
_BOUND = re.compile(r"\b(unlimited|unbounded|limitless|infinite)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Value:
    kind: str  # number | identifier | version | code | quoted | name | polarity | bound
    text: str  # as written in the answer


def norm_ident(text: str) -> str:
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
        ("identifier", BACKSLASH),
        ("identifier", _DOT_COMMAND),
        ("identifier", UPPER_NAME),
        ("identifier", _HYPHENATED),
    ):
        for m in pattern.finditer(text):
            token = m.group(0).rstrip(".")
            if kind == "identifier" and pattern is _DOTTED and all(len(p) <= 1 for p in token.split(".")):
                continue  # "e.g", "i.e", "U.S"
            if pattern is _DOTTED and re.fullmatch(r"[A-Za-z]{1,4}\.[A-Z][a-z]*", token):
                continue  # "in 1989.It": a missing space, not a name
            if pattern is _CAMEL and token.lower() in UNITS:
                continue  # "1 GiB": a number's unit
            if any(a <= m.start() and m.start() + len(token) <= b for a, b, _, _ in spans):
                continue
            spans.append((m.start(), m.start() + len(token), kind, token))
    return [(kind, token) for _, _, kind, token in sorted(spans)]


def mask_spans(text: str, spans: Iterable[str]) -> str:
    for s in sorted(set(spans), key=len, reverse=True):
        text = text.replace(s, " " * len(s))
    return text


def values_of(sentence: str) -> list[Value]:
    """The checkable values of a sentence (markers and bullets already removed)."""
    out: list[Value] = []
    codes = [m.group(1).strip() for m in CODE.finditer(sentence)]
    out += [Value("code", c) for c in codes if c]
    rest = CODE.sub(lambda m: " " * len(m.group(0)), sentence)
    idents = identifiers(rest)
    out += [Value(kind, token) for kind, token in idents]
    out += [Value("version", m.group(0)) for m in _MAJOR_VERSION.finditer(rest)]
    unmasked = rest
    rest = mask_spans(rest, [t for _, t in idents])
    for m in _DECIMAL.finditer(rest):  # "Python 3.15": a version the question may ask about
        if _VERSION_CONTEXT.search(rest[: m.start()]):
            out.append(Value("version", m.group(0)))
    out += [Value("number", n.text) for n in numbers(rest, claims=True)]
    for m in _QUOTED.finditer(rest):
        # found where identifiers are masked (a quote is no identifier), read with them: "Read Committed
        # is the default isolation level in PostgreSQL." is quoted whole
        group = next(i for i, g in enumerate(m.groups(), start=1) if g)
        out.append(Value("quoted", unmasked[m.start(group) : m.end(group)].strip()))
    first = True
    for m in _CAPITALISED.finditer(rest):
        word = m.group(0).strip("'’-")
        is_first = first and not rest[: m.start()].strip(" \"'“‘(*#")
        first = False
        if is_first or len(word) < 2 or word.lower() in STOP_WORDS or word == "I":
            continue
        if word.lower() in POLARITY or word.lower() in UNITS or word.lower() in SCALES:
            continue  # True / False are yes/no claims (below), MB and KB units of a number
        out.append(Value("name", word))
    for m in _POLARITY_CLAIM.finditer(rest):
        out.append(Value("polarity", (m.group(1) or m.group(2)).lower()))
    out += [Value("bound", m.group(1).lower()) for m in _BOUND.finditer(rest)]
    return out
