"""Which parts of a several-part question an answer leaves out.

The small model often answers the first part of "Which pickle protocol is the default since Python 3.8,
and what is the default maxsize of functools.lru_cache?" and stops, although the functools page is
among its sources; every sentence it wrote passes its check, so nothing else notices the missing half.
A part is told by the names only it uses (``functools.lru_cache``, "Mount Everest", ``http.server``:
verbatim terms, capitalised or quoted words, numbers, possessives), and counts as answered when the
answer uses any word of its own ("maxsize" too). A part that names nothing of its own ("... and how
does it work?") is taken as answered: the answer may well speak of it in other words, and a part
asked again for nothing would end the answer with a false "the sources do not say". A part that asks
for an amount or a time ("how tall is Mount Everest", "how many executions ...", "when was ...") is
answered only by a sentence that speaks of it and gives a figure: "Mount Everest is the highest mountain
on Earth above sea level. [2]" speaks of Everest and does not say how tall it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundglass.answer.cite import strip_markers
from groundglass.answer.grounding import values_of
from groundglass.answer.grounding.wording import content_stems
from groundglass.answer.planner.fallback import names_something
from groundglass.answer.sentences import split_sentences

# A part that asks for an amount or a time, which only a figure answers.
_ASKS_FIGURE = re.compile(
    r"^\W*(?:and\s+|but\s+)?(?:how\s+(?:tall|high|long|many|much|old|big|far|deep|wide|large|heavy|fast|often)"
    r"|(?:in\s+)?what\s+year|when)\b",
    re.IGNORECASE,
)
# Amounts written in words ("one million times").
_FIGURE_WORDS = re.compile(r"\b(?:hundred|thousand|million|billion|trillion|dozen)s?\b", re.IGNORECASE)


def _names(part: str) -> set[str]:
    """The stems of the words of ``part`` that name something."""
    words = part.split()
    return content_stems(" ".join(w for i, w in enumerate(words) if names_something(w, i == 0)))


def unanswered_parts(parts: Sequence[str], answer: str) -> list[str]:
    """The parts of the question that ``answer`` does not speak of (or, for one that asks for an
    amount or a time, gives no figure about), in order."""
    bare = strip_markers(answer)
    said = content_stems(bare)
    sentences = split_sentences(bare)
    stems = [content_stems(p) for p in parts]
    out = []
    for i, part in enumerate(parts):
        others = set().union(*(s for j, s in enumerate(stems) if j != i))
        own = stems[i] - others
        if not _names(part) - others:
            continue
        if not own & said or (_ASKS_FIGURE.search(part) and not _figure_about(part, own, sentences)):
            out.append(part)
    return out


def lacks_figure(part: str, answer: str) -> bool:
    """Whether ``answer``, the answer to ``part`` alone, gives no figure where the part asks for an
    amount or a time ("Mount Everest is the highest mountain on Earth. [2]" for "how tall is Mount
    Everest")."""
    return bool(_ASKS_FIGURE.search(part)) and not _figure_about(
        part, None, split_sentences(strip_markers(answer))
    )


def _figure_about(part: str, own: set[str] | None, sentences: Sequence[str]) -> bool:
    """Whether a sentence that uses a word of ``own`` (the part's own stems; None: any sentence)
    gives a figure that the part does not already hold."""
    for sentence in sentences:
        if own is not None and not own & content_stems(sentence):
            continue
        figures = [v.text for v in values_of(sentence) if v.kind == "number"]
        if _FIGURE_WORDS.search(sentence) or any(f.lower() not in part.lower() for f in figures):
            return True
    return False
