"""Which parts of a several-part question an answer leaves out.

The small model often answers the first part of "Which pickle protocol is the default since Python 3.8,
and what is the default maxsize of functools.lru_cache?" and stops, although the functools page is
among its sources; every sentence it wrote passes its check, so nothing else notices the missing half.
A part is told by the names only it uses (``functools.lru_cache``, "Mount Everest", ``http.server``:
verbatim terms, capitalised or quoted words, numbers, possessives), and counts as answered when the
answer uses any word of its own ("maxsize" too). A part that names nothing of its own ("... and how
does it work?") is taken as answered: the answer may well speak of it in other words, and a part
asked again for nothing would end the answer with a false "the sources do not say".
"""

from __future__ import annotations

from collections.abc import Sequence

from groundglass.answer.cite import strip_markers
from groundglass.answer.grounding.wording import content_stems
from groundglass.answer.planner.fallback import names_something


def _names(part: str) -> set[str]:
    """The stems of the words of ``part`` that name something."""
    words = part.split()
    return content_stems(" ".join(w for i, w in enumerate(words) if names_something(w, i == 0)))


def unanswered_parts(parts: Sequence[str], answer: str) -> list[str]:
    """The parts of the question that ``answer`` does not speak of, in order."""
    said = content_stems(strip_markers(answer))
    stems = [content_stems(p) for p in parts]
    out = []
    for i, part in enumerate(parts):
        others = set().union(*(s for j, s in enumerate(stems) if j != i))
        own = stems[i] - others
        if _names(part) - others and not own & said:
            out.append(part)
    return out
