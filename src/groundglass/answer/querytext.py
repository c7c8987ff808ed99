"""Small word-level checks on questions and search queries: content words, named entities, references.

The query rewriter and the planner use them to judge what a small model wrote (does the rewrite keep
the follow-up's words? did it invent any?) and to build fallbacks without a model (the entities of
the previous turn). They are hand-written on purpose: a stop-word list and two regular expressions
answer these questions in microseconds, where an NLP pipeline (spaCy, NLTK data) would be another
model to ship offline for a few heuristics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from groundglass.answer.definitions import terms_in

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


def shared_run(query: str, text: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """The longest run of words that ``text`` says in the order ``query`` says them (lower-case):
    "number of multiple requests to perform at a time" of ab's "-c concurrency: Number of multiple
    requests to perform at a time" for "Which option sets the number of multiple requests to perform at
    a time?". Only the words of ``text`` that are also in ``query`` are compared, so it is cheap.
    Words in ``skip`` are left out of both first, so that "git log act as if --follow" runs through
    "git log will act as if the --follow option"."""
    asked = [w for w in words(query) if w not in skip]
    positions: dict[str, list[int]] = {}
    for j, w in enumerate(asked):
        positions.setdefault(w, []).append(j)
    best, best_end = 0, 0
    previous: dict[int, int] = {}
    for w in (w for w in words(text) if w not in skip):
        current = {j: previous.get(j - 1, 0) + 1 for j in positions.get(w, ())}
        for j, n in current.items():
            if n > best:
                best, best_end = n, j
        previous = current
    return asked[best_end - best + 1 : best_end + 1] if best else []


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
# snake_case names (os.path.join, exist_ok, __init__), calls (len()), names of letters then digits
# (cp819, sha256, ipv6: codes, not words; a dense embedding of a table of them does not come near the
# question that names one) and CamelCase names (KeepAliveTimeout, imagePullPolicy: a directive or a
# field, which a table of its neighbours, MaxKeepAliveRequests, resembles word for word). Word
# tokenizers drop or split the others, so "%j" would match every row of a format-code table; they are
# matched as written instead.
CAMEL_CASE = r"[A-Za-z]*[a-z][A-Z][A-Za-z\d]*"  # a name with a capital inside: KeepAliveTimeout
_LITERAL = re.compile(
    r"(?<![\w%-])(?:%[A-Za-z]|--?[A-Za-z][\w-]*|\w+(?:\.\w+)+|\w*_\w+|\w+\(\)"
    rf"|(?=[A-Za-z\d]{{3}})[A-Za-z]+\d[A-Za-z\d]*|{CAMEL_CASE})(?![\w])"
    r"|(?<![\w.\\/~-])\.[a-z][a-z0-9_]+(?![\w.])"  # a dot-command (sqlite3's ".dump") or an extension
)


# A product's name written as a word and an acronym (PostgreSQL, MySQL, GraphQL) is prose: pages about it
# name it in every paragraph, so a passage that states the answer ("5432 by default") need not.
_BRAND = re.compile(r"[A-Z][a-z]+[A-Z]{2,}")


def literal_terms(text: str) -> list[str]:
    """The verbatim terms of ``text`` (format codes, flags, dotted/snake_case/CamelCase names, calls), in
    order."""
    return list(
        dict.fromkeys(
            m.group(0).rstrip(".")
            for m in _LITERAL.finditer(text)
            if not m.group(0).replace(".", "").isdigit() and not _BRAND.fullmatch(m.group(0))
        )
    )


def literal_hits(text: str, terms: list[str]) -> int:
    """How many of ``terms`` occur in ``text`` as whole tokens, case as written. A call
    (``setTimeout()``) occurs where its signature does too (``setTimeout(callback[, delay[, ...args]])``):
    Node.js's section on setTimeout never writes "setTimeout()", and the chunks that did were only
    other functions' mentions of it."""
    return sum(1 for t in terms if re.search(_term_pattern(t), text))


def _term_pattern(term: str) -> str:
    searched = _searched_form(term)
    end = "" if searched != term else r"(?![\w])"  # a call's opening parenthesis ends it already
    return r"(?<![\w%-])" + re.escape(searched) + end


def _searched_form(term: str) -> str:
    """What a text search looks for to find ``term``: a call by its name and opening parenthesis
    (``setTimeout(``), so that its signature is found too; any other term as it is."""
    return term.removesuffix(")") if term.endswith("()") else term


# A Markdown table row's first cell, and a table's |---| rule line (the row above a rule is its header).
_FIRST_CELL = re.compile(r"^\s*\|\s*([^|\n]*?)\s*\|")
_RULE = re.compile(r"^\s*\|(\s*:?-{2,}:?\s*\|)+\s*$")
_CELL_MARKUP = "`*'\" "
ROW_KEY_MAX_WORDS = 4  # a longer first cell is prose, not a key
# A name that stands for its object alone: CamelCase, snake_case or with digits (ThreadPoolExecutor,
# max_workers, sha256), not a plain word (join, path) that prose uses for other things too.
_OWN_NAME = re.compile(r"[A-Za-z_]\w*(?:[a-z][A-Z]|_[A-Za-z0-9]|[A-Za-z]\d)\w*")


def param_in_words(param: str, text: str) -> bool:
    """Whether two adjacent words of ``text`` name the parameter ``param``: the first begins it and the
    second (or its singular) ends it: "compression level(s)" for ``compresslevel``, "max size" for
    ``maxsize``, "buffer size" for ``buffer_size``."""
    flat = param.replace("_", "").lower()
    for first, second in pairwise(words(text)):
        for end in dict.fromkeys((second, second.removesuffix("s"))):
            head = flat.removesuffix(end)
            if end and head != flat and len(head) >= 3 and first.startswith(head):
                return True
    return False


def row_keys(query: str) -> frozenset[str]:
    """What a question may name as a table row's key, lower-case: its content words ("the dig
    attribute" -> dig) and its verbatim terms (``max_exp``, ``%j``), a format code also without its
    ``%``: SQLite's table of printf substitution types keys the row of ``%q`` "q, Q"."""
    terms = literal_terms(query)
    prose = _LITERAL.sub(" ", query)  # mant_dig names one key, not "mant" and "dig"
    codes = {t.lower().removeprefix("%") for t in terms if t.startswith("%") and len(t) > 1}
    return frozenset(content_words(prose)) | {t.lower() for t in terms} | codes


def _cell_key(cell: str) -> str:
    return cell.strip(_CELL_MARKUP).removesuffix("()").lower()


# words a row's key may hold between the question's: "columns per table" for "columns in a table"
_LINKING = frozenset({"per", "each", "via"})


def named_rows(text: str, keys: frozenset[str]) -> set[str]:
    """The first cells of ``text``'s table body rows that the question names, lower-case: the cell is
    one of ``keys``, or a short cell all of whose content words are keys.

    A manual's table of attributes, codes or limits gives each row one line, "| dig | DBL_DIG | ... |",
    and a question about one of them names its key. Every row of such a table shares the question's
    other words (the header's "macro", "dig" inside mant_dig), so neither BM25 nor a sentence's word
    share tells the asked-for row from its neighbours; its first cell does. Header rows do not count.
    """
    if not keys or "|" not in text:
        return set()
    lines = text.splitlines()
    named: set[str] = set()
    for i, line in enumerate(lines):
        m = _FIRST_CELL.match(line)
        if m is None or _RULE.match(line) or (i + 1 < len(lines) and _RULE.match(lines[i + 1])):
            continue
        key = _cell_key(m.group(1))
        cell_words = [w for w in content_words(key) if w not in _LINKING]
        listed = {_cell_key(k) for k in key.split(",")} if "," in key else set()  # "q, Q": two keys
        if (
            key in keys
            or listed & keys
            or (0 < len(cell_words) <= ROW_KEY_MAX_WORDS and set(cell_words) <= keys)
        ):
            named.add(key)
    return named


# A signature opens its line (a call in an example does not):
# "- class concurrent.futures.ThreadPoolExecutor(", "@functools.lru_cache(", "### `json.dumps(".
_SIGNATURE_START = (
    r"(?m)^[\s>#*•`-]*(?:(?:class|def|async|coroutine|awaitable|abstractmethod|classmethod|staticmethod|"
    r"function|method)\s+|@)*"
)
_PARAMETER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*=\s*([^,]*)")
# A default that leaves the value to the prose ("separators=None": "The default is (', ', ': ') if indent
# is None"): such a signature says nothing of the default asked about.
_NO_VALUE = frozenset({"none", "null", "nil", "undefined", "..."})


@dataclass(frozen=True)
class Verbatim:
    """What of a question a text must hold as written to outrank texts that only share its words: its
    verbatim terms (:func:`literal_terms`) and the table rows it names (:func:`named_rows`)."""

    terms: tuple[str, ...]
    keys: frozenset[str]
    query: str = ""  # as asked: a parameter may be named in its words

    @classmethod
    def of(cls, query: str) -> Verbatim:
        return cls(tuple(literal_terms(query)), row_keys(query), query)

    def __bool__(self) -> bool:
        return bool(self.terms or self.keys)

    def hits(self, text: str) -> int:
        """Verbatim terms held plus keyed rows."""
        return len(self.matched(text))

    @property
    def short_names(self) -> dict[str, str]:
        """Dotted term -> its last part, for the last parts that are names of their own
        (``concurrent.futures.ThreadPoolExecutor`` -> ``ThreadPoolExecutor``; not ``os.path.join``)."""
        out = {}
        for t in self.terms:
            last = t.removesuffix("()").rsplit(".", 1)[-1]
            if "." in t.removesuffix("()") and _OWN_NAME.fullmatch(last) and last not in self.terms:
                out[t] = last
        return out

    @property
    def scanned(self) -> tuple[str, ...]:
        """What a text search must look for: the terms (a call by its name and opening parenthesis, so
        that its signature is found), and the short names of dotted ones."""
        return tuple(dict.fromkeys(_searched_form(t) for t in (*self.terms, *self.short_names.values())))

    def matched(self, text: str, short_names: bool = False) -> set[str]:
        """The verbatim terms ``text`` holds and the first cells of the rows it holds that the question
        names (prefixed ``|``, so a term and a row key never merge). A manual's section on
        ``concurrent.futures.ThreadPoolExecutor`` calls it ``ThreadPoolExecutor``: a text that holds
        only the short name holds that (as a term of its own, with its own, lower, rarity), with
        ``short_names``: the index ranks such chunks by their fused score too; a web page's chunks are
        ranked by what they hold first, and there the short ``lru_cache`` of ``functools.lru_cache``
        promoted ``cache()``'s "Returns the same as lru_cache(maxsize=None)" over the answer."""
        held = {t for t in self.terms if literal_hits(text, [t])}
        shorts = self.short_names.items() if short_names else ()
        held |= {short for t, short in shorts if t not in held and literal_hits(text, [short])}
        return held | {"|" + key for key in named_rows(text, self.keys)} | self.signatures(text)

    def definitions(self, text: str) -> set[str]:
        """The question's terms that ``text`` defines, as ``=name``: a definition list's term line
        names it (``- work_mem (integer):``, ``- class concurrent.futures.ThreadPoolExecutor(...):``).
        Of the 25 chunks of PostgreSQL's manual that name ``work_mem``, those about
        ``hash_mem_multiplier`` (which names it three times) came before the one entry that says
        what its default is."""
        out: set[str] = set()
        for defined in terms_in(text):
            name = defined.split()
            for term in self.terms:
                bare = term.removesuffix("()")
                if name and (name[-1] == bare or name[-1].endswith("." + bare)):
                    out.add("=" + bare)
        return out

    def signatures(self, text: str) -> set[str]:
        """The signatures ``text`` gives of a callable the question names, with a parameter the question
        names, as ``name(parameter=``: "the default maxsize of functools.lru_cache" and
        ``@functools.lru_cache(maxsize=128, typed=False)``. Every chunk of a manual's section on it holds
        the name (its heading), the examples hold the parameter (``@lru_cache(maxsize=32)``, or
        ``with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor``, within a line); only
        the signature, at the start of its line, holds both, and the default asked about (unless that is
        ``None``, which the prose explains)."""
        return {f"{name}({param}=" for name, param, _ in self.signature_defaults(text)}

    def signature_defaults(self, text: str) -> list[tuple[str, str, str]]:
        """(callable as the question names it, parameter, default as printed) of each signature in
        ``text`` of a callable the question names, for a parameter the question names (see
        :meth:`signatures`)."""
        out: list[tuple[str, str, str]] = []
        for term in self.terms:
            name = term.removesuffix("()")
            for m in re.finditer(_SIGNATURE_START + re.escape(name) + r"\(([^()]*)\)", text):
                out += [
                    (name, p, value.strip())
                    for p, value in _PARAMETER.findall(m.group(1))
                    if (p.lower() in self.keys or param_in_words(p, self.query))
                    and value.strip().lower() not in _NO_VALUE
                ]
        return out

    def weighted(
        self, texts: Sequence[str], total: int | None = None, short_names: bool = False
    ) -> dict[int, float]:
        """Position -> the summed rarity (``log(1 + n / df)``: ``n`` is ``total``, else the number of
        ``texts``; ``df`` counts over ``texts``) of what each text holds, for the texts that hold any.
        A term held by every chunk of a page (the object's name, ``sys.float_info``) says less about
        where the answer is than the one row that names the attribute asked for, so the rarer match
        ranks first. The entry that defines a term (:meth:`definitions`) holds one thing more than the
        passages that only name it."""
        held = {i: self.matched(t, short_names) | self.definitions(t) for i, t in enumerate(texts)}
        held = {i: m for i, m in held.items() if m}
        df: dict[str, int] = {}
        for m in held.values():
            for item in m:
                df[item] = df.get(item, 0) + 1
        n = max(1, total if total is not None else len(texts))
        return {i: sum(math.log(1 + n / df[item]) for item in m) for i, m in held.items()}


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
