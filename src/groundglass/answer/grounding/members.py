"""A named part of a named thing: "the rotate argument of logging.basicConfig()".

When the question asks about a part (an argument, option, attribute, field...) of something it names,
a sentence that names the part must cite a source that names both. Each alone is not enough: a page on
log handlers says "rotate", and a page on basicConfig() says "the default is None", so a sentence
about basicConfig()'s rotate argument (which does not exist) would find every one of its words and
values somewhere in what it cites.
"""

from __future__ import annotations

import re

from groundglass.answer.grounding.evidence import Evidence
from groundglass.answer.grounding.values import norm_ident
from groundglass.answer.grounding.wording import STOP_WORDS

_KIND = (
    r"(?:keyword[- ]argument|argument|parameter|option|flag|keyword|attribute|setting|field|key|"
    r"property|method|member)s?"
)
_NAME = r"[`'\"]?(?P<{}>[A-Za-z_][\w-]*)[`'\"]?"
_WHOLE = r"[`'\"]?(?P<whole>[A-Za-z_][\w.]*(?:\(\))?)[`'\"]?"
_PART_OF = re.compile(
    _NAME.format("part") + rf"\s+{_KIND}\s+(?:of|for|to|in|on|accepted by|passed to)\s+(?:the\s+)?" + _WHOLE,
    re.IGNORECASE,
)
_POSSESSIVE = re.compile(_WHOLE + r"['’]s\s+" + _NAME.format("part") + rf"\s+{_KIND}\b", re.IGNORECASE)
# words that stand before "argument" without naming one ("the first argument of open()")
_NOT_A_NAME = {
    "default", "first", "second", "third", "last", "optional", "required", "positional", "keyword",
    "new", "other", "same", "only", "main", "given", "each", "every", "extra", "additional", "named",
    "command-line", "command", "line", "config", "configuration", "its", "their", "one", "two",
}  # fmt: skip


def named_parts(question: str) -> list[tuple[str, str]]:
    """``(part, whole)`` pairs the question asks about, lower-cased; ``whole`` is the last part of a
    dotted name ("basicconfig" for logging.basicConfig())."""
    out: list[tuple[str, str]] = []
    for pattern in (_PART_OF, _POSSESSIVE):
        for m in pattern.finditer(question):
            part = m.group("part").lower()
            whole = norm_ident(m.group("whole")).rsplit(".", 1)[-1]
            if part in STOP_WORDS or part in _NOT_A_NAME or not whole or whole in STOP_WORDS:
                continue
            if (part, whole) not in out:
                out.append((part, whole))
    return out


def _term(word: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])" + re.escape(word) + r"(?![\w])")


def unsupported_parts(sentence: str, question: str, evidence: Evidence) -> list[str]:
    """The parts that ``sentence`` names (of those the question asks about) that no cited source
    names together with their whole."""
    lowered = sentence.lower()
    out = []
    for part, whole in named_parts(question):
        if not _term(part).search(lowered):
            continue
        if not evidence.sources_with(_term(part)) & evidence.sources_with(_term(whole)):
            out.append(part)
    return out
