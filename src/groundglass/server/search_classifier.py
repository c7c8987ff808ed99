"""Does a question need a search? Perplexity's ``enable_search_classifier`` and ``search_type: "auto"``.

Three kinds of request need no sources, and searching for them only costs time and ends in a decline
("I could not find this in the provided sources") where the model could simply answer:

- **chit-chat**: greetings, thanks, questions about the assistant itself ("hi", "thanks!", "who are
  you?");
- **arithmetic**: an expression of numbers and operators, in symbols or words ("what is 15% of 80?",
  "12 times 7", "square root of 144");
- **rewriting the text given**: rephrase, translate, summarise, shorten, proofread... when the text to
  work on is in the request (after a colon, in quotes, on its own lines), or a short phrase to
  translate. "Summarize the history of Rome" gives no text, so it is searched.

Everything else is searched: a wrong "no" costs a grounded answer, a wrong "yes" only a search. The
rules are regular expressions over the last user message, a few microseconds a question;
``python -m bench.bench_search_classifier`` measures them on a labelled set of questions.

``depth`` is the other half of ``search_type: "auto"``: a question that asks several things, compares
or asks how one thing affected another gets a multi-step search (``pro``), others one search
(``fast``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHAT = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|yo|howdy|greetings|good (?:morning|afternoon|evening|night)|"
    r"thanks?(?: (?:a lot|so much|again))?|thank you(?: (?:so much|very much|again))?|thx|cheers|"
    r"ok(?:ay)?|cool|great|nice|awesome|perfect|got it|bye|goodbye|see you(?: later)?|"
    r"lol|haha|you(?:'re| are) (?:great|awesome|welcome|funny)|no problem|sorry|"
    r"how are you(?: doing)?(?: today)?|how's it going|what's up|sup|"
    r"who are you|what are you|what is your name|what's your name|what can you do|how can you help(?: me)?|"
    r"are you (?:a bot|a robot|an ai|human|real)|"
    r"tell me a joke|say something(?: funny)?|nice to meet you)"
    r"(?:,? ?(?:there|again|everyone|all|friend|buddy|mate|so much|a lot|for (?:the|your) (?:help|answer)))?"
    r"[\s!.?,:)(;-]*)+$"
)
_MATH_LEAD = re.compile(
    r"^(?:please )?(?:what(?:'s| is)|how much is|calculate|compute|evaluate|solve|work out|"
    r"can you (?:calculate|compute|work out|solve)|what do you get (?:for|from|if you \w+))\s+"
)
_MATH_WORDS = re.compile(
    r"\b(?:plus|minus|times|multiplied by|divided by|over|squared|cubed|square root of|cube root of|"
    r"to the power of|percent of|of|and|mod|modulo|the|sum of|product of|difference of|half of|"
    r"double|triple|x)\b"
)
_MATH_REST = re.compile(r"^[\d\s.,+\-*/^×÷%()=?]*$")
_REWRITE = re.compile(
    r"^(?:please |can you |could you |would you )?(?:rewrite|rephrase|paraphrase|reword|summari[sz]e|"
    r"shorten|simplify|proofread|correct|fix|edit|polish|improve|condense|expand|formalize|"
    r"make|turn|convert|format|capitalize|translate|spell[- ]check)\b"
)
_TRANSLATE = re.compile(r"^(?:please |can you |could you )?translate\b.{1,80}\b(?:into|to|in)\s+\w+", re.S)
# the text to work on is in the request: after a colon, in quotes or on lines of its own
_GIVEN_TEXT = re.compile(r":\s*\S.{8,}|[\"“'‘«].{3,}[\"”'’»]|\n\s*\S", re.S)
_THIS_TEXT = re.compile(r"\b(?:this|these|the following|my|the text|the sentence|the paragraph|below)\b")
_MULTI = re.compile(
    r"\b(?:compare|comparison|versus|vs\.?|difference between|differences between|pros and cons|"
    r"relationship between|how did .{3,60} (?:affect|influence|change|shape)|impact of .{3,60} on|"
    r"and (?:who|what|when|where|why|how|which)\b)"
)


@dataclass(frozen=True)
class Decision:
    search: bool
    reason: str  # chit-chat | arithmetic | rewriting | question


def needs_search(question: str) -> Decision:
    """Whether ``question`` (the last user message) needs sources, and which rule said so."""
    text = question.strip().lower()
    flat = " ".join(text.split())
    if not flat:
        return Decision(False, "chit-chat")
    if _CHAT.match(flat):
        return Decision(False, "chit-chat")
    if _arithmetic(flat):
        return Decision(False, "arithmetic")
    if _REWRITE.match(flat) and (_GIVEN_TEXT.search(text) or (_TRANSLATE.match(flat) and len(flat) < 90)):
        return Decision(False, "rewriting")
    if _REWRITE.match(flat) and _THIS_TEXT.search(flat) and _GIVEN_TEXT.search(text):
        return Decision(False, "rewriting")
    return Decision(True, "question")


def _arithmetic(flat: str) -> bool:
    if not re.search(r"\d", flat):
        return False
    rest = _MATH_LEAD.sub("", flat)
    rest = _MATH_WORDS.sub(" ", rest)
    return bool(_MATH_REST.match(rest))


def depth(question: str) -> str:
    """``pro`` (a multi-step search) for a question that asks several things or compares, else ``fast``."""
    flat = " ".join(question.lower().split())
    if flat.count("?") >= 2 or _MULTI.search(flat) or len(flat.split()) > 30:
        return "pro"
    return "fast"
