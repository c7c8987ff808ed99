"""The words of an answer sentence, as the value check compares them with the question's.

Crude stems and a stop-word list are enough here: the check only asks which words a sentence adds
beyond its question. :func:`restates_question` fails a sentence that adds none ("The X of a Y starts
with [1][2].") however well its words overlap the sources.
"""

from __future__ import annotations

import re

from groundglass.answer.querytext import literal_terms

STOP_WORDS = frozenset(
    """a an the and or but if then than that this these those there here of in on at to for from by with
    without about as into over under after before between during through against within among upon
    across along behind beyond toward towards despite except onto unless because whether
    is are was were be been being
    am do does did done has have had having it its it's they them their he him his she her we our you
    your i me my not no nor so such very can could would should will shall may might must also too
    which who whom whose what when where why how all any both each few more most other some own same
    only just per via according source sources use used uses using""".split()
)
# Words that report on the sources or the question instead of answering it, and the kinds of thing a
# manual documents ("The attribute X corresponds to the C macro `X`" says nothing of X).
_FILLER = frozenset(
    """answer answers question questions described describe describes mentioned mention mentions listed
    list given provided provide provides specified specify documented stated state states following
    information detail details refer refers see seen explained explain explains based context
    value values defined define defines called call named name set sets find found text page
    document documents documentation shown show shows known
    attribute attributes parameter parameters argument arguments option options setting settings""".split()
)
WORD = re.compile(r"[^\W_][\w'’-]*")
_MARKER = re.compile(r"\[\s*-?\d+(?:\s*,\s*-?\d+)*\s*\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|#{1,6})\s+")
# up to three words in quotes or backticks: a value named as such ('The default output mode is "list"'),
# never filler, whatever the word
_QUOTED = re.compile(r"(?<![\w'’])[\"“‘'`]([^\"“”‘’'`]{1,40})[\"”’'`](?![\w'’])")


def stem(word: str) -> str:
    """A crude stem, enough to match "starts" with "start" and "highest" with "high"."""
    w = word.lower().strip("'’-")
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    if (len(w) > 5 and w.endswith(("sses", "xes", "zes"))) or w.endswith(("ches", "shes")):
        # "classes", "boxes", "matches"; but "adventures" -> "adventure", as "adventure" stays, and
        # "raises" -> "raise" (as "raise" stays: "rais" let "... raises when X is [1]." pass as new words)
        return w[:-2]
    for suffix in ("ing", "est", "ed", "er", "ly", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix) and not w.endswith("ss"):
            return w[: -len(suffix)]
    return w


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(_MARKER.sub(" ", text))]


def content_stems(text: str) -> set[str]:
    """Stems of the words that carry content: stop words dropped."""
    out = set()
    for w in words(text):
        lw = w.lower()
        if lw in STOP_WORDS or (len(lw) < 2 and not lw.isdigit()):
            continue
        out.add(stem(lw))
    return out


def clean(sentence: str) -> str:
    """The sentence without citation markers and list bullets."""
    return " ".join(_MARKER.sub(" ", _BULLET.sub("", sentence)).split())


_CHOICE = re.compile(r"\b(\w+) or (\w+)\b")  # a question's two alternatives: "on or off"


def restates_question(sentence: str, question: str) -> bool:
    """True when ``sentence`` adds no word beyond the question's, the markers and filler words.

    A verbatim term the question lacks (``%f``, ``--force``, ``os.path.join``) is new content even
    when its letters are too short to count as a word, and so is a quoted word that would otherwise be
    filler: SQLite's default output mode is "list"."""
    text = clean(sentence)
    if set(literal_terms(text)) - set(literal_terms(question)):
        return False
    said = set(words(text))
    for first, second in _CHOICE.findall(question.lower()):
        if first != second and (first in said) != (second in said):
            return False  # "Is ExpiresActive on or off by default?": one of the two is the answer
    novel = content_stems(text) - content_stems(question)
    quoted = {
        stem(w.lower()) for span in _QUOTED.findall(text) if len(span.split()) <= 3 for w in words(span)
    }
    return not {w for w in novel if (w not in _FILLER and stem(w) not in FILLER_STEMS) or w in quoted}


FILLER_STEMS = frozenset(stem(w) for w in _FILLER)
