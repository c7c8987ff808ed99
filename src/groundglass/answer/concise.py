"""A brief answer to a question that asks for one value ends once a checked sentence has given it.

Asked "What is the default rel_tol of math.isclose()?", the default model wrote "The default tolerance
for math.isclose() is 1e-09, which assures that the two values are the same within about 9 decimal
digits. rel_tol must be greater than zero. abs_tol is the minimum absolute tolerance ... [1][2] abs_tol
must be at least zero. [2]": 69 tokens, where the answer was whole after 25. On the two cores of the
development machine each decoding step costs about 0.1 s, so the sentences after the answer were
2.5 of the answer's 10.7 seconds, and each of them was one more claim that could go wrong.

So where the answer style is brief and the question asks for one value (what, which, in which, how
many, when, who, what X returns; not "what does X do", "how", "why", a list, or a question of several
parts), the model is stopped once a sentence has passed its check (:mod:`~groundglass.answer.checked`)
and, beyond the question, states a value of its own: a number, an identifier, code, a quotation, a
version, a literal (None, True) or, for a "who" question, a name. What the model had begun after it is
never shown. The stop comes only after markers the model wrote: a sentence without its own borrows
those of the next sentence or line, and cut off before them it went uncited ("... is 4300 digits as
provided in sys.int_info.default_max_str_digits." on Python's manual). A first sentence that only restates the
question, or a preamble ("The pprint module formats data structures."), gives no such value, and the
model goes on. The answer above took 7.7 seconds instead of 10.7.
"""

from __future__ import annotations

import re

from groundglass.answer import cite
from groundglass.answer.grounding.values import values_of

# A question that asks for one value, after an optional opening clause ("In Python 3.8,", "By default,")
_LEAD = r"^(?:[^,;?]{0,80}[,;]\s*)?"
_ASKS_VALUE = re.compile(
    _LEAD + r"(?:(?:in|since|from|for|at|on|to|by|of|with)\s+)?"
    r"(?:what|which|how\s+(?:many|much|long|big|large|old|often)|when|who|whom|whose)\b",
    re.IGNORECASE,
)
# ... but not one that asks for a description, a list, a reason or a comparison
_ASKS_MORE = re.compile(
    _LEAD + r"(?:what|which)\s+"
    r"(?:(?:does|do|did)\b(?!.*\breturns?\b)|happens|happened|are|were"
    r"|is\s+the\s+(?:difference|purpose|role|meaning|effect))\b"
    r"|^\W*(?:please\s+)?(?:explain|describe|compare|list|summari[sz]e|tell\s+me)\b"
    r"|\b(?:differences?|why|how\s+to)\b"
    # "What is asyncio?", "Who was Ada Lovelace?": a definition or a life, not one value
    r"|^\W*(?:what|who)\s+(?:is|are|was|were)\s+(?:an?\s+)?[^\s?]+(?:\s+[^\s?]+)?\s*\?\s*$",
    re.IGNORECASE,
)
# "None", "True": a literal is the whole answer to "what does X return ..."
_LITERAL = re.compile(r"\b(?:None|True|False|null)\b")
# values that are words of prose: a capitalised name or a yes/no word answers only a "who" question
_WORDY = frozenset({"name", "polarity"})
_WHO = re.compile(r"^\W*(?:who|whom|whose)\b", re.IGNORECASE)


def asks_one_value(question: str) -> bool:
    """Whether ``question`` asks for one value ("What is the default maxsize of lru_cache?", "Which
    codec has the alias cp819?", "When was X added?"), not for a description or a list."""
    q = question.strip()
    return bool(_ASKS_VALUE.match(q)) and not _ASKS_MORE.search(q)


def gives_value(shown: str, question: str) -> bool:
    """Whether a cited sentence of ``shown`` (the answer's text so far, each sentence of it checked)
    states a value beyond ``question``."""
    who = bool(_WHO.match(question))
    for sentence in cite.split_sentences(shown):
        if _added(cite.strip_markers(sentence), question, names=who):
            return True
    return False


def _added(sentence: str, question: str, *, names: bool) -> list[str]:
    """The values of ``sentence`` that ``question`` does not hold."""
    asked = question.lower()
    kept = [v.text for v in values_of(sentence) if names or v.kind not in _WORDY]
    kept += _LITERAL.findall(sentence)
    return [v for v in kept if v.lower() not in asked]
