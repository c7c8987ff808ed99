"""Which parts of a several-part question an answer leaves out.

The small model often answers the first part of "Which pickle protocol is the default since Python 3.8,
and what is the default maxsize of functools.lru_cache?" and stops, although the functools page is
among its sources; every sentence it wrote passes its check, so nothing else notices the missing half.
A part is told by the names only it uses (``functools.lru_cache``, "Mount Everest", ``http.server``:
verbatim terms, capitalised or quoted words, numbers, possessives), and counts as answered when the
answer uses any word of its own ("maxsize" too). A part that names nothing of its own ("... and how
does it work?") is taken as answered: the answer may well speak of it in other words, and a part
asked again for nothing would end the answer with a false "the sources do not say". That is unless
it asks for an amount ("... and how many tables can a single join contain at most?"): a figure
said of its own words is what answers it, in whatever words. A part that asks
for an amount or a time ("how tall is Mount Everest", "how many executions ...", "when was ...") is
answered only by a sentence that speaks of it and gives a figure: "Mount Everest is the highest mountain
on Earth above sea level. [2]" speaks of Everest and does not say how tall it is. A part that asks
"which", "what", "who", "where", "when" or "how" is not answered by a clause that only says its words
again: "The pickle protocol is the default since Python 3.8, and the default maxsize of
functools.lru_cache is 128" speaks of the pickle protocol and names none (a yes/no part may be
answered in its own words: "X is deprecated").
A dotted name speaks of its last part: "sys.float_info.dig" is about ``dig``, and "... by command line
flag, or sys APIs" does not speak of it (its module is only where it lives), unless the part names
nothing else of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundglass.answer.cite import strip_markers
from groundglass.answer.grounding import values_of
from groundglass.answer.grounding.wording import content_stems, restates_question
from groundglass.answer.planner.fallback import names_something
from groundglass.answer.querytext import literal_terms
from groundglass.answer.sentences import split_sentences

# A part that asks for an amount or a time, which only a figure answers.
_ASKS_FIGURE = re.compile(
    r"^\W*(?:and\s+|but\s+)?(?:how\s+(?:tall|high|long|many|much|old|big|far|deep|wide|large|heavy|fast|often)"
    r"|(?:in\s+)?what\s+year|when"
    # "what is the maximum number of columns in a table": "... is further limited by the tuple's size"
    # speaks of it and says no number
    r"|what\s+(?:is|are)\s+the\s+(?:(?:maximum|minimum|max|min|largest|smallest|default|total)\s+)?"
    r"(?:number|count|amount)\s+of)\b",
    re.IGNORECASE,
)
# A part that asks for something the question does not hold, which its own words cannot answer.
_ASKS_WH = re.compile(r"^\W*(?:and\s+|but\s+)?(?:which|what|who|whom|where|when|how)\b", re.IGNORECASE)
# Where one clause of an answer sentence ends and the next begins: "..., and ...", "...; ...".
_CLAUSE_BREAK = re.compile(r",\s+(?:and|but|while)\s+|;\s+|\s+and\s+(?=the\b)", re.IGNORECASE)
# A sentence that goes on about what the one before it named.
_GOES_ON = re.compile(r"^\W*(?:it|its|this|that|these|they|their)\b", re.IGNORECASE)
# Amounts written in words ("one million times").
_FIGURE_WORDS = re.compile(r"\b(?:hundred|thousand|million|billion|trillion|dozen)s?\b", re.IGNORECASE)


def _names(part: str) -> set[str]:
    """The stems of the words of ``part`` that name something."""
    words = part.split()
    return content_stems(" ".join(w for i, w in enumerate(words) if names_something(w, i == 0)))


def unanswered_parts(parts: Sequence[str], answer: str) -> list[str]:
    """The parts of the question that ``answer`` does not speak of (or, for one that asks for an
    amount or a time, gives no figure about; or, for one that asks "which" or "what", only says again),
    in order."""
    bare = strip_markers(answer)
    said = content_stems(bare)
    sentences = split_sentences(bare)
    stems = [content_stems(p) for p in parts]
    question = " ".join(parts)
    out = []
    for i, part in enumerate(parts):
        others = set().union(*(s for j, s in enumerate(stems) if j != i))
        own = stems[i] - others
        if not _names(part) - others and not (_ASKS_FIGURE.search(part) and own):
            continue
        own = own - _namespaces(part) or own
        if (
            not own & said
            or (_ASKS_FIGURE.search(part) and not _figure_about(part, own, sentences))
            or (_ASKS_WH.search(part) and _only_restated(own, sentences, question))
        ):
            out.append(part)
    return out


def _namespaces(part: str) -> set[str]:
    """The stems that ``part`` uses only as the leading components of dotted names (``sys`` and
    ``float_info`` of ``sys.float_info.dig``)."""
    dotted = [t for t in literal_terms(part) if "." in t.strip(".")]
    leading = set().union(*(content_stems(" ".join(t.split(".")[:-1])) for t in dotted))
    rest = part
    for term in dotted:
        rest = rest.replace(term, " ")
    return leading - content_stems(rest)


def _only_restated(own: set[str], sentences: Sequence[str], question: str) -> bool:
    """Whether every clause of ``sentences`` that uses a word of ``own`` (a part's own stems) adds
    nothing beyond ``question``'s words (and there is one). A sentence after it that opens with a
    pronoun goes on about the same thing: "SMTP.connect uses a default port. It is 25." answers."""
    about = []
    for i, sentence in enumerate(sentences):
        clauses = [c for c in _CLAUSE_BREAK.split(sentence) if own & content_stems(c)]
        if clauses and i + 1 < len(sentences) and _GOES_ON.match(sentences[i + 1]):
            clauses.append(sentences[i + 1])
        about += clauses
    return bool(about) and all(restates_question(c, question) for c in about)


def lacks_figure(part: str, answer: str) -> bool:
    """Whether ``answer``, the answer to ``part`` alone, gives no figure where the part asks for an
    amount or a time ("Mount Everest is the highest mountain on Earth. [2]" for "how tall is Mount
    Everest")."""
    return bool(_ASKS_FIGURE.search(part)) and not _figure_about(
        part, None, split_sentences(strip_markers(answer))
    )


def _figure_about(part: str, own: set[str] | None, sentences: Sequence[str]) -> bool:
    """Whether a sentence that uses a word of ``own`` (the part's own stems; None: any sentence)
    gives a figure that the part does not already hold; with ``own``, in the clause that uses it
    ("shared_buffers is 128MB, and the maximum number of columns ... is further limited by tuple
    size" gives no number of columns)."""
    for sentence in sentences:
        if own is not None:
            about = [c for c in _CLAUSE_BREAK.split(sentence) if own & content_stems(c)]
            if not about:
                continue
            sentence = " ".join(about)
        figures = [v.text for v in values_of(sentence) if v.kind == "number"]
        if _FIGURE_WORDS.search(sentence) or any(f.lower() not in part.lower() for f in figures):
            return True
    return False
