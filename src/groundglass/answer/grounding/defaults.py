"""A default that the documented signature contradicts: "the default value of max_workers is 1".

API references print a callable's signature with its defaults
(``class concurrent.futures.ThreadPoolExecutor(max_workers=None, thread_name_prefix='', ...)``), and
their examples call it with other values (``ThreadPoolExecutor(max_workers=1)``). The value check
finds "1" next to "max_workers" in the example and passes the claim that it is the default. A
sentence that says what a parameter's default is must agree with the signature its cited sources
print for it, unless a cited sentence that speaks of a default states the claimed value ("If
max_workers is None or not given, it will default to min(32, os.cpu_count() + 4)").

A signature is a line of its own that is a call with ``name=value`` parameters (after an optional
bullet, ``class``, ``def`` or a decorator's ``@``), ending with its closing parenthesis, a return
annotation, a colon or a heading mark; a call inside an example is not on a line of its own. A call
in running text passes an argument and says nothing of the default: "Returns the same as
lru_cache(maxsize=None)" is no source for "the default maxsize of lru_cache is None".

Prose says a default too: "Changed in version 3.8: The default protocol is 4." A sentence that says
what the default of something is ("the default pickle protocol ... is protocol 5") must state a value
that a cited sentence about that default states, when the cited sentences about it state any; beside
"Protocol version 5 was added in Python 3.8" the value check alone found "5" near "protocol" and
"3.8" and passed it. In a definition list a description says its term's default with a pronoun
("- autovacuum_work_mem (integer): ... It defaults to -1, indicating that the value of
maintenance_work_mem should be used instead"): the sentence states the default of the entry's term,
never of another setting it names. Sources are compared as
:class:`~groundglass.answer.grounding.evidence.Evidence` keeps them: lower-cased, a line per
sentence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from groundglass.answer.definitions import is_term, term_name
from groundglass.answer.grounding.evidence import Evidence
from groundglass.answer.grounding.figures import numbers, same_number
from groundglass.answer.grounding.values import norm_ident, values_of
from groundglass.answer.grounding.wording import STOP_WORDS, stem
from groundglass.answer.querytext import literal_terms, param_in_words, strip_citations

_SIGNATURE = re.compile(
    r"^(?:[-*•]\s+)?(?:(?:async\s+)?def\s+|class\s+|@)?(?P<name>[a-z_][\w.]*)\((?P<args>.*)\)"
    r"\s*(?:->\s*[^¶:]*)?[¶:]?\s*$"
)
_PARAM = re.compile(r"^\s*\**(?P<param>[a-z_]\w*)\s*(?::[^=]*)?=\s*(?P<value>.+?)\s*$")
_DEFAULT_WORD = re.compile(r"\bdefault(?:s|ed|ing)?\b", re.IGNORECASE)
# what a manual says of a default without the word: git daemon "normally listens on port ... 9418", "the
# usual 7-character-long conflict markers"
_USUAL = re.compile(r"\b(?:normally|usually|usual)\b", re.IGNORECASE)
# how a sentence may say an empty default
_EMPTY = {
    "''": ("empty string", "empty str"),
    '""': ("empty string", "empty str"),
    "()": ("empty tuple",),
    "[]": ("empty list",),
    "{}": ("empty dict",),
}
_LITERALS = re.compile(r"\b(none|true|false|null)\b", re.IGNORECASE)
# "the default <what>" and "<what> defaults to": up to three words name what has the default
_DEFAULT_OF = re.compile(r"\bdefault\s+((?:[a-z_][\w.]*\s+){0,2}[a-z_][\w.]*)")
_DEFAULTS_TO = re.compile(r"\b([a-z_][\w.]*)\s+defaults\s+to\b")
# words too general to tell one default from another: "the default value of max_workers"
_GENERIC = frozenset("value values setting settings option argument parameter number one".split())
# "default <what> is <value>", "defaults to <value>", "(default: <value>)": the value is the few
# words after the verb or colon; <what> is up to four words ("The default value of this limit is 50000",
# SQLite's only statement of the LIKE pattern limit)
_STATED = re.compile(
    r"\bdefault(?:s|ed|ing)?(?P<what>(?:\s+[\w.()'-]+){0,4}?)\s*(?:\bis\b|\bwas\b|\bto\b|=|:)\s*"
    r"(?P<value>[^\s,;)]+(?:\s+[^\s,;)]+){0,3})"
)
_STATED_ANY_CASE = re.compile(_STATED.pattern, re.IGNORECASE)  # names keep their capitals for values_of
# "a wrapper around the default tokenizer (unicode61)": the one word in brackets after what has the
# default is its value (SQLite's FTS5 page says its default tokenizer only so)
_STATED_BRACKETED = re.compile(r"\bdefault(?P<what>(?:\s+[\w.-]+){1,3}?)\s*\((?P<value>[\w.-]+)\)")
# "It is the default protocol starting with Python 3.8": a sentence about a default whose subject is a
# pronoun; its value is in the sentence it points back to
_POINTS_BACK = re.compile(r"^(?:[-*•]\s+)?(?:it|this|that|which)\b")
_BACK = 3  # sentences looked back through for what "it" is
_ENDS = STOP_WORDS | {"since", "until", "starting", "when", "used", "now", "currently"}
# what may follow "the default is" without being the default's value: "the default is chosen by ..."
_VERBS = frozenset(
    "chosen determined given taken computed set used applied based defined inherited specified platform "
    "system stored kept saved recorded located held written read found listed shown described documented "
    "explained controlled changed overridden configured derived calculated".split()
)


@dataclass(frozen=True)
class Default:
    """One ``param=value`` of a signature in the sources."""

    callable: str  # the last part of the dotted name, lower-cased ("threadpoolexecutor")
    param: str
    value: str  # as printed, lower-cased
    line: str
    source_of: int = -1  # which of the cited texts prints it


def _split_args(args: str) -> list[str]:
    """The parameters of a signature, split at the commas outside brackets and quotes."""
    out, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(args):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(args[start:i])
            start = i + 1
    out.append(args[start:])
    return out


def signature(line: str) -> tuple[str, str] | None:
    """(dotted name, parameters) of the signature ``line`` prints, lower-cased; None when it prints none."""
    m = _SIGNATURE.match(line.strip().lower())
    return (m.group("name"), m.group("args")) if m else None


def signature_defaults(evidence: Evidence) -> list[Default]:
    """Every ``param=value`` of the signatures printed in the sources."""
    out = []
    for i, line in enumerate(evidence.sentences):
        printed = signature(line)
        if printed is None:
            continue
        name = printed[0].rsplit(".", 1)[-1]
        for arg in _split_args(printed[1]):
            p = _PARAM.match(arg)
            if p is not None:
                out.append(Default(name, p.group("param"), p.group("value"), line, evidence.source[i]))
    return out


def _term(word: str, text: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text) is not None


def _names_param(param: str, text: str) -> bool:
    """Whether ``text`` (lower-cased) names the parameter ``param``, as written or in words
    (:func:`~groundglass.answer.querytext.param_in_words`): "The default compression level of
    gzip.open() is -1" was not read as being about ``gzip.open(..., compresslevel=9, ...)``."""
    return _term(param, text) or param_in_words(param, text)


def _says(sentence: str, value: str) -> bool:
    """Whether ``sentence`` (lower-cased) states the printed default ``value``."""
    bare = value.strip("'\"")
    if value in _EMPTY:
        return any(w in sentence for w in _EMPTY[value]) or _term(value, sentence)
    if bare and _term(bare, sentence):
        return True
    printed = numbers(value)
    said = numbers(sentence, claims=True)
    # the same number exactly: the value check's rounding would take 0.0 for 1e-09
    return len(printed) == 1 and any(math.isclose(n.value, printed[0].value, rel_tol=1e-9) for n in said)


def _claimed(sentence: str, question: str) -> list[str]:
    """What ``sentence`` says beyond the question: its values, and the literals None/True/False."""
    asked = question.lower()
    out = [v.text for v in values_of(sentence) if v.text.lower() not in asked]
    out += [w for w in _LITERALS.findall(sentence) if not _term(w.lower(), asked)]
    return list(dict.fromkeys(out))


def asks_default(question: str) -> bool:
    """Whether ``question`` asks about a default ("What is the default value of X?", "... by default?")."""
    return _DEFAULT_WORD.search(question) is not None


def states_default(sentence: str) -> bool:
    """Whether ``sentence`` states a default with a value: "It defaults to 64 megabytes (64MB).",
    "width (default: 70)", "The default is 100."; not "be careful not to set the default value too
    high"."""
    return any(_claimed(m.group(0), "default") for m in _STATED_ANY_CASE.finditer(sentence))


# "The server listens to port 8000 by default.", "Read Committed is the default isolation level": the
# value is among the few words before it
_BY_DEFAULT = re.compile(
    r"(?P<value>(?:\S+\s+){0,2}\S+)\s+(?:by\s+default|is\s+the\s+default)\b", re.IGNORECASE
)


# "A really simple TCP Git daemon that normally listens on port "DEFAULT_GIT_PORT" aka 9418.": what is
# normally so is the default, said in the few words after it
_NORMALLY = re.compile(r"\b(?:normally|usually)\s+(?P<value>(?:\S+\s+){0,5}\S+)", re.IGNORECASE)


def stated_values(sentence: str, question: str) -> list[str]:
    """The values ``sentence`` states as a default, beyond ``question``'s own: "the default protocol
    is 4", "(defaulting to 28 places)" and "normally listens on port ... 9418" give theirs; "The default
    can be overridden by passing ... 9000" states none (the 9000 is not what the default is)."""
    # "The value of the default cache size is stored in the 4-byte ... integer": where, not what
    spans = [m.group("value") for m in _STATED_ANY_CASE.finditer(sentence) if not _says_how(m.group("value"))]
    spans += [m.group("value") for m in _BY_DEFAULT.finditer(sentence)]
    spans += [m.group("value") for m in _NORMALLY.finditer(sentence)]
    return list(dict.fromkeys(v for span in spans for v in _claimed(span.rstrip(".:;"), question)))


def _says_how(value: str) -> bool:
    """Whether the words after "the default ... is" say what is done with the default ("stored in",
    "chosen by") rather than what it is."""
    words = [w.strip("'\"`.,;:()").lower() for w in value.split()]
    if words[:2] == ["set", "to"]:  # "The default is set to 5."
        return False
    return bool(words) and words[0] in _VERBS


def contradicted(sentence: str, question: str, evidence: Evidence) -> list[str]:
    """The values of ``sentence`` that state a parameter's default which the cited signatures print
    differently, when no cited sentence about a default holds them; [] otherwise."""
    return contradiction(sentence, question, evidence)[0]


def contradiction(sentence: str, question: str, evidence: Evidence) -> tuple[list[str], Default | None]:
    """:func:`contradicted`'s values, with the signature's ``param=value`` that prints the default
    otherwise (for the retry to point at); ([], None) when none does."""
    if not _DEFAULT_WORD.search(sentence):
        return [], None
    sentence = strip_citations(sentence)  # a marker's number is no claimed value
    lowered = sentence.lower()
    claimed = _claimed(sentence, question)
    if not claimed:
        return [], None
    signatures = signature_defaults(evidence)
    # the callable is the one the sentence names; the question's only when the sentence names none
    # ("Its default width is 80"): "the default width of textwrap.fill() is 70" was checked against
    # pprint.PrettyPrinter's signature (width=80), which the question named too, and failed
    names_one = any(_term(d.callable, lowered) for d in signatures)
    context = lowered if names_one else f"{lowered} {question.lower()}"
    for d in signatures:
        if not _names_param(d.param, lowered) or not _term(d.callable, context):
            continue
        if _says(lowered, d.value):
            return [], None
        # a passage that prints only another callable's signature speaks of that one's parameters:
        # pprint's "width (default 80)" is no source for a default width of textwrap.fill
        others = {e.source_of for e in signatures if e.callable != d.callable} - {
            e.source_of for e in signatures if e.callable == d.callable
        }
        about = [
            near
            for i, s in enumerate(evidence.sentences)
            if s != d.line
            and (_term(d.callable, s) or (_term(d.param, s) and evidence.source[i] not in others))
            for near in _near_default(s)
        ]
        if not _held(claimed, about):
            return claimed, d
    return [], None


def borrowed(sentence: str, question: str, evidence: Evidence) -> list[str]:
    """The values of ``sentence`` (a default of a callable it names) that only another callable's
    printed signature holds: "The default width of textwrap.fill() is 80 [1][2]" cited to
    ``pprint.PrettyPrinter(indent=1, width=80, ...)`` and a page that merely names textwrap.fill.
    :func:`contradicted` reads signatures of the callables the sentence or the question names, so in a
    two-part question the other part's signature passed it. [] when a signature of a callable the
    sentence names is cited (:func:`contradicted` decides then), or a cited sentence about a default
    that names it holds the value."""
    if not _DEFAULT_WORD.search(sentence):
        return []
    sentence = strip_citations(sentence)
    lowered = sentence.lower()
    signatures = signature_defaults(evidence)
    # the callables it names: calls, dotted names and CamelCase; a parameter's name is none of them
    named = {
        re.sub(r"\(.*", "", v.text).rsplit(".", 1)[-1].lower()
        for v in values_of(sentence)
        if v.kind in ("identifier", "code") and re.search(r"[(.]|[a-z][A-Z]", v.text)
    } - {d.param for d in signatures}
    named.discard("")
    if not named or any(d.callable in named for d in signatures):
        return []
    others = [d for d in signatures if _term(d.param, lowered) and _says(lowered, d.value)]
    claimed = _claimed(sentence, question)
    if not others or not claimed:
        return []
    lines = {d.line for d in signatures}
    about = [
        near
        for s in evidence.sentences
        if s not in lines and any(_term(n, s) for n in named)
        for near in _near_default(s)
    ]
    return [] if _held(claimed, about) else claimed


def _held(claimed: list[str], texts: list[str]) -> bool:
    """Whether one of ``texts`` (lower-cased) states one of the ``claimed`` values, or its figure in
    another unit ("1GB" for 1073741824)."""
    if any(_term(norm_ident(v), t) or _says(t, v.lower()) for v in claimed for t in texts):
        return True
    said = [n for v in claimed for n in numbers(v)]
    return any(same_number(n, s) for t in texts for s in numbers(t) for n in said if n.unit)


def _near_default(sentence: str) -> list[str]:
    """The words around each "default" of ``sentence``: three before, sixteen after ("The defaults
    are to connect to the local host at the standard SMTP port (25)"). Code merged into
    a sentence makes it long ("... its default value of 128: @lru_cache def ...(...) If maxsize is
    set to None, ..."), and a value far from the word is not said to be the default."""
    words = sentence.split()
    return [" ".join(words[max(0, i - 3) : i + 17]) for i, w in enumerate(words) if _DEFAULT_WORD.search(w)]


_BEFORE = 6  # words looked back through from "default" for its value, within the clause


def _default_clause(sentence: str) -> list[str]:
    """The clause around each "default" of ``sentence``: up to six words before it (not past a comma
    or semicolon), and after it up to
    the end of its clause (a comma, semicolon or "which"), sixteen words at most. "The default tolerance
    is 1e-09, which assures that the two values are the same within about 9 decimal digits" states
    1e-09 as a default, not 9; "Defaults to 65536 (64 KiB), or 16 for objectMode" states both."""
    words = sentence.split()
    out = []
    for i, w in enumerate(words):
        if not _DEFAULT_WORD.search(w):
            continue
        end, depth = i + 1, 0
        while end < min(len(words), i + 17) and words[end].lower() != "which":
            end += 1
            depth += words[end - 1].count("(") - words[end - 1].count(")")
            if words[end - 1].endswith((",", ";")) and depth <= 0:
                if words[end - 1].endswith(",") and end < len(words) and words[end].lower() == "or":
                    continue  # "Defaults to 65536 (64 KiB), or 16 for objectMode": another default
                break  # "min(32, os.cpu_count() + 4)" is one value
        start = i
        while start > max(0, i - _BEFORE) and not words[start - 1].endswith((",", ";", ":")):
            start -= 1  # "Read Committed is the default isolation level": the value is before it
        out.append(" ".join(words[start:end]))
    return out


def _subject(sentence: str) -> str:
    """The word that names what ``sentence`` (lower-cased) gives the default of: "protocol" in "the
    default pickle protocol is ...", "max_workers" in "the default value of max_workers is ..."; "" when
    it names none."""
    m = _DEFAULT_OF.search(sentence)
    if m is not None:
        words = sentence[m.start(1) :].split()
        run = []
        for word in words[:3]:
            if word in _ENDS:
                break
            run.append(word)
        rest = words[len(run) :]
        # "the default value of work_mem": the "of" names what has the default ("the default number
        # of times" is a count: its "of" names no setting)
        if run and run[-1] in _GENERIC - {"number", "one"} and len(rest) > 1 and rest[0] == "of":
            run = [w for w in rest[1:3] if w not in _ENDS][:1]
        if run and run[-1] not in _GENERIC:
            return run[-1].strip(".,;:?")
    m = _DEFAULTS_TO.search(sentence)
    return m.group(1) if m is not None and m.group(1) not in _ENDS else ""


def _stated(sentence: str, subject: str) -> list[str]:
    """The values that ``sentence`` (lower-cased) states as the default of ``subject``: "the default
    protocol is 4", "protocol defaults to 4", "protocol (default: 4)"; the words a default sentence
    holds elsewhere ("Changed in version 3.7", "the default ... returned by getdefaulttimeout()") are
    not stated as the default."""
    out = []
    for m in _STATED.finditer(sentence):
        what = m.group("what") or ""
        # "the protocol default is", "port defaults to", "the maxsize at its default value of 128"
        before = sentence[: m.start()].split()[-4:]
        if _term(subject, what) or subject in (w.strip("(,") for w in before):
            # the words before the verb count too: "its default value of 128: ..."
            span = f"{what} {m.group('value')}".strip()
            if _claimed(span, ""):  # "default is returned if ...": no value, the noun "default"
                out.append(span)
    out += [
        f"{m.group('what').strip()} {m.group('value')}"
        for m in _STATED_BRACKETED.finditer(sentence)
        if _term(subject, m.group("what"))
    ]
    return out


_LEADING = frozenset({"set", "to", "the", "a", "an", "always", "usually", "typically", "normally"})


def _word_stated(sentence: str, asked: set[str]) -> list[str]:
    """The word that ``sentence`` (lower-cased) states as a default when it is no value of its own
    kind: "the default isolation level is set to serializable" (a lower-case name, which the value
    check does not read) was cited to a page whose default is "read committed", and passed. A word the
    question holds, or a general one ("the default is used when ..."), is none."""
    out = []
    for m in _STATED.finditer(sentence):
        words = [w.strip("'\"`.,;:()") for w in m.group("value").split()]
        while words and words[0] in _LEADING:
            words = words[1:]
        if words and words[0].isalpha() and len(words[0]) > 2:
            word = words[0]
            if word not in asked and word not in _ENDS and word not in _GENERIC and word not in _VERBS:
                out.append(word)
    return out


# "The default tokenizer for an FTS5 table is the porter tokenizer": the word said to be the default,
# after a longer subject than _STATED reads
_DEFAULT_IS_WORD = re.compile(
    r"\bdefault\b[^.;:]{0,60}?\b(?:is|was)\s+(?:set\s+to\s+)?(?:the\s+|an?\s+)?([a-z][a-z-]{2,})\b"
)


# words that describe a literal value rather than name one: "an empty string" for ``''``
_DESCRIBES = frozenset(
    "empty blank unset unspecified undefined unlimited infinite enabled disabled current same local "
    "native automatic zero positive negative".split()
)


def unheld_word(sentence: str, question: str, evidence: Evidence) -> list[str]:
    """The lower-case word ``sentence`` calls the default when no cited text holds it: the default model
    answered "The default tokenizer for an FTS5 table is the porter tokenizer." citing only the JSON
    page, which names no tokenizer (a lower-case name is none of the values :func:`values_of` reads).
    Capitalised names, figures and the literals None/True/False are checked as values already; a word
    of the question, or one that says how rather than what ("is used when"), is no claim."""
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    return [
        word
        for word in _called_default(strip_citations(sentence), asked)
        if not (evidence.contains_term(word) or stem(word) in evidence.stems)
    ]


def _called_default(sentence: str, asked: set[str]) -> list[str]:
    """The lower-case words ``sentence`` calls the default after a subject of any length ("The default
    tokenizer for an FTS5 table is the porter tokenizer"), but for words of the question (``asked``),
    words that say how rather than what, literals and figures (checked as values already)."""
    out = []
    for m in _DEFAULT_IS_WORD.finditer(sentence):
        word = m.group(1)
        if word in asked or word in _ENDS or word in _GENERIC or word in _VERBS or word in _LEADING:
            continue
        if word in _DESCRIBES or _LITERALS.fullmatch(word) or numbers(word):
            continue
        out.append(word)
    return out


def _pointed_back_to(evidence: Evidence, subject: str | None, skip: set[int] | None = None) -> list[str]:
    """The sentences that "it" stands for in a sentence that calls it the default ``subject`` without a
    value: "Protocol version 4 was added in Python 3.4. It adds support for very large objects. It is
    the default protocol starting with Python 3.8." gives the first. The closest sentence before it
    (of the last few) that names the subject with a number is the one meant; without it the web
    reader's cut of the pickle page stated no default at all, and "protocol 5" passed beside
    "Protocol version 5 was added in Python 3.8". Only sentences of the same source count. ``subject``
    None: any default, and the closest sentence before it with a number. The sentences in ``skip`` are
    not read."""

    def names(text: str) -> bool:
        return subject is None or _term(subject, text)

    out = []
    sentences = evidence.sentences
    for i, s in enumerate(sentences):
        if skip and i in skip:
            continue
        if not (_POINTS_BACK.match(s) and _DEFAULT_WORD.search(s) and names(s)) or (
            subject is not None and _stated(s, subject)
        ):
            continue
        for j in range(i - 1, max(0, i - _BACK) - 1, -1):
            if evidence.source[j] != evidence.source[i]:
                break
            if names(sentences[j]) and numbers(sentences[j]):
                out.append(sentences[j])
                break
    return out


def _entry_term(evidence: Evidence, i: int) -> str | None:
    """The term of the definition entry that sentence ``i`` stands in (lower-cased): the closest term
    line before it in the same source; None outside a definition list."""
    for j in range(i - 1, -1, -1):
        if evidence.source[j] != evidence.source[i]:
            return None
        if is_term(evidence.sentences[j]):
            return term_name(evidence.sentences[j])
    return None


# "- maxSessionMemory<number> Sets the maximum memory ... Default: 10." (Node.js's manual): a list item
# that opens with a name is that name's entry, and a "Default:" sentence in it states its default
ITEM_HEAD = r"^\s*[-*•]\s+`?(?P<name>[a-z_$][\w.$-]*)`?"  # also labelled.py's, on lines of any case
_ITEM_HEAD = re.compile(ITEM_HEAD)
_LABEL_DEFAULT = re.compile(r"^default\s*:")
_ITEM_BACK = 12  # sentences looked back through for the head of the item a "Default:" ends


def _item_term(evidence: Evidence, i: int) -> str | None:
    """The name that opens the list item whose last sentence is ``i``, a "Default:" label: the closest
    item head within the few sentences before it, in the same source; None when there is none."""
    for j in range(i - 1, max(-1, i - _ITEM_BACK - 1), -1):
        if evidence.source[j] != evidence.source[i]:
            return None
        if m := _ITEM_HEAD.match(evidence.sentences[j]):
            return m.group("name")
    return None


def _is_entry_term(subject: str, term: str) -> bool:
    """Whether ``term`` (a term line's name) is ``subject``: ``work_mem`` or ``-s work_mem``'s last word."""
    return subject == term or (bool(term) and subject == term.split()[-1].rsplit(".", 1)[-1])


def _entry_defaults(evidence: Evidence, subject: str) -> tuple[list[str], set[int]]:
    """What the entries' pronoun sentences and "Default:" labels about a default state. The first list:
    the values stated as the default of ``subject`` by its own entry ("- maintenance_work_mem (integer):
    ... It defaults to 64 megabytes", "- maxSessionMemory<number> ... Default: 10."). The set: the
    sentences that state another term's default while naming ``subject`` after it ("It defaults to -1,
    indicating that the value of maintenance_work_mem should be used instead", in autovacuum_work_mem's
    entry), or that end another item ("Default: 32." of maxSettings), which are no source for
    ``subject``'s default."""
    own: list[str] = []
    other: set[int] = set()
    labelled: list[str] = []  # the "Default:" of the subject's own list item
    other_items: set[int] = set()  # ... of other items
    for i, s in enumerate(evidence.sentences):
        if _LABEL_DEFAULT.match(s) and (item := _item_term(evidence, i)) is not None:
            # "Default: 32." ends maxSettings' item, beside maxSessionMemory's "Default: 10."
            if _is_entry_term(subject.strip("()`'\""), item):
                labelled += [m.group("value").rstrip(".") for m in _STATED.finditer(s)]
            else:
                other_items.add(i)
            continue
        said = _DEFAULT_WORD.search(s)
        if not (said and _POINTS_BACK.match(s)):
            continue
        term = _entry_term(evidence, i)
        if term is None:
            continue
        if _is_entry_term(subject, term):
            own += [f"{m.group('what') or ''} {m.group('value')}".strip() for m in _STATED.finditer(s)]
        elif _term(subject, s[said.end() :]):
            other.add(i)
    # other items' labels are set aside only beside the subject's own: a sentence may call the default
    # by other words than the item's name ("the sampling rate" of "- resolution <number> ... Default: 10.")
    return own + labelled, (other | other_items) if labelled else other


def _argument(subject: str, value: str, sentence: str) -> bool:
    """Whether ``sentence`` (lower-cased, not a signature) passes ``value`` as the one argument of a
    call, ``lru_cache(maxsize=None)``; a list of parameters in running text is how some pages print
    a signature, so a call with more than that one is not counted."""
    bare = re.escape(norm_ident(value))
    return re.search(rf"\w\(\s*{re.escape(subject)}\s*=\s*['\"]?{bare}['\"]?\s*\)", sentence) is not None


def prose_contradicted(sentence: str, question: str, evidence: Evidence) -> list[str]:
    """The values of ``sentence`` that state a default which the cited sentences state differently
    ("The default protocol is 4." against "... is protocol 5"), or that no cited text states as a
    default (not beside the word "default", not in a signature); [] when one of them states it."""
    text = strip_citations(sentence)
    lowered = text.lower()
    subject = _subject(lowered)
    if not subject and _POINTS_BACK.match(lowered) and _DEFAULT_WORD.search(lowered):
        # "It defaults to -1, ...", after "The default value of maintenance_work_mem is 64MB.": what
        # the answer speaks of is what the question asks the default of, when it asks of one thing
        subject = _subject(question.lower()) if len(literal_terms(question)) <= 1 else ""
    # what the question names is the subject, not a value: `smtplib.SMTP.connect` for "smtplib's SMTP.connect"
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    claimed = [v for v in _claimed(text, question) if not set(re.findall(r"\w+", v.lower())) <= asked]
    claimed = claimed or _word_stated(lowered, asked) or _called_default(text, asked)
    # what the sentence adds after its default's clause is not said to be the default: "The default
    # value of PRAGMA cache_size is -2000, which means the cache size is limited to 2048000 bytes of
    # memory" states -2000 as the default (2048000 bytes is checked as a value, as every figure is)
    own = [c.lower() for c in _default_clause(text)]
    # "Since version 18.0.0, the default request timeout is 300 seconds": a release outside the default's
    # clause says when, not what the default is (the value check holds it to a source, as every version)
    releases = {v.text for v in values_of(text) if v.kind == "version"}
    claimed = [v for v in claimed if v not in releases or any(_says(c, v.lower()) for c in own)]
    claimed = [v for v in claimed if any(_says(c, v.lower()) for c in own)] or claimed
    if not subject or not claimed:
        return []
    signatures = signature_defaults(evidence)
    if any(
        _says(lowered, d.value) for d in signatures if d.param == subject or _names_param(d.param, lowered)
    ):
        return []
    entry, others = _entry_defaults(evidence, subject)
    defaults = [s for i, s in enumerate(evidence.sentences) if _DEFAULT_WORD.search(s) and i not in others]
    stated = (
        [v for s in defaults for v in _stated(s, subject)]
        + _pointed_back_to(evidence, subject, others)
        + entry
    )
    if stated:
        return [] if _held(claimed, stated) else claimed
    # a call passes an argument, it does not say what the default is: "Returns the same as
    # lru_cache(maxsize=None)" is no source for "the default maxsize of lru_cache is None"
    lines = {d.line for d in signatures}
    calls = [s for s in evidence.sentences if s not in lines]
    passed = [
        v
        for v in claimed
        if any(_argument(subject, v, s) for s in calls) and not any(_term(norm_ident(v), s) for s in defaults)
    ]
    if passed and len(passed) == len(claimed):
        return passed
    # no cited text states that default: a value is the default where a sentence says "default" beside
    # it (or says what is normally or usually so) or the signature gives it; "Precision is set to
    # nine." (of ExtendedContext) is no source for "the default precision of the decimal context is 9"
    near = (
        [w for s in defaults for w in _default_clause(s)]
        + _pointed_back_to(evidence, None, others)
        + [d.line for d in signatures if _term(subject, d.line)]
        + [s for s in evidence.sentences if _USUAL.search(s)]
    )
    held = [v.lower() for v in claimed if _held([v], near)]
    # "900 seconds (15 minutes)": a value the sentence says again in another unit is held with it
    return [v for v in claimed if v.lower() not in held and not _held([v], held)]
