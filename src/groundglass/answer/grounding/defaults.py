"""A default that the documented signature contradicts: "the default value of max_workers is 1".

API references print a callable's signature with its defaults
(``class concurrent.futures.ThreadPoolExecutor(max_workers=None, thread_name_prefix='', ...)``), and
their examples call it with other values (``ThreadPoolExecutor(max_workers=1)``). The value check
finds "1" next to "max_workers" in the example and passes the claim that it is the default. A
sentence that says what a parameter's default is must agree with the signature its cited sources
print for it, unless a cited sentence that speaks of a default states the claimed value ("If
max_workers is None or not given, it will default to min(32, os.cpu_count() + 4)").

A signature is a line of its own that is a call with ``name=value`` parameters (after an optional
bullet, ``class`` or ``def``), ending with its closing parenthesis, a return annotation, a colon or a
heading mark; a call inside an example is not on a line of its own. Sources are compared as
:class:`~groundglass.answer.grounding.evidence.Evidence` keeps them: lower-cased, a line per
sentence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from groundglass.answer.grounding.evidence import Evidence
from groundglass.answer.grounding.figures import numbers
from groundglass.answer.grounding.values import norm_ident, values_of

_SIGNATURE = re.compile(
    r"^(?:[-*•]\s+)?(?:(?:async\s+)?def\s+|class\s+)?(?P<name>[a-z_][\w.]*)\((?P<args>.*)\)"
    r"\s*(?:->\s*[^¶:]*)?[¶:]?\s*$"
)
_PARAM = re.compile(r"^\s*\**(?P<param>[a-z_]\w*)\s*(?::[^=]*)?=\s*(?P<value>.+?)\s*$")
_DEFAULT_WORD = re.compile(r"\bdefault(?:s|ed)?\b", re.IGNORECASE)
# how a sentence may say an empty default
_EMPTY = {
    "''": ("empty string", "empty str"),
    '""': ("empty string", "empty str"),
    "()": ("empty tuple",),
    "[]": ("empty list",),
    "{}": ("empty dict",),
}
_LITERALS = re.compile(r"\b(none|true|false|null)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Default:
    """One ``param=value`` of a signature in the sources."""

    callable: str  # the last part of the dotted name, lower-cased ("threadpoolexecutor")
    param: str
    value: str  # as printed, lower-cased
    line: str


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


def signature_defaults(evidence: Evidence) -> list[Default]:
    """Every ``param=value`` of the signatures printed in the sources."""
    out = []
    for line in evidence.sentences:
        m = _SIGNATURE.match(line.strip())
        if m is None:
            continue
        name = m.group("name").rsplit(".", 1)[-1]
        for arg in _split_args(m.group("args")):
            p = _PARAM.match(arg)
            if p is not None:
                out.append(Default(name, p.group("param"), p.group("value"), line))
    return out


def _term(word: str, text: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text) is not None


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


def contradicted(sentence: str, question: str, evidence: Evidence) -> list[str]:
    """The values of ``sentence`` that state a parameter's default which the cited signatures print
    differently, when no cited sentence about a default holds them; [] otherwise."""
    if not _DEFAULT_WORD.search(sentence):
        return []
    lowered = sentence.lower()
    claimed = _claimed(sentence, question)
    if not claimed:
        return []
    context = f"{lowered} {question.lower()}"
    for d in signature_defaults(evidence):
        if not _term(d.param, lowered) or not _term(d.callable, context):
            continue
        if _says(lowered, d.value):
            return []
        about = [
            s
            for s in evidence.sentences
            if "default" in s and s != d.line and (_term(d.param, s) or _term(d.callable, s))
        ]
        if not any(_term(norm_ident(v), s) or _says(s, v.lower()) for v in claimed for s in about):
            return claimed
    return []
