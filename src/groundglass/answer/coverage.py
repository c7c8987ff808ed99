"""Which parts of a several-part question an answer leaves out.

The small model often answers the first part of "Which pickle protocol is the default since Python 3.8,
and what is the default maxsize of functools.lru_cache?" and stops, although the functools page is
among its sources; every sentence it wrote passes its check, so nothing else notices the missing half.
A part counts as answered when the answer uses a word that only that part of the question uses
("lru_cache", "maxsize", "functools"); a part with no word of its own (the parts of "Is X older than
Y?" share theirs) is taken as answered, since there is nothing to tell it by.
"""

from __future__ import annotations

from collections.abc import Sequence

from groundglass.answer.cite import strip_markers
from groundglass.answer.grounding.wording import content_stems


def own_words(parts: Sequence[str]) -> list[set[str]]:
    """For each part, the stems of the content words that no other part uses."""
    stems = [content_stems(p) for p in parts]
    return [s - set().union(*(o for j, o in enumerate(stems) if j != i)) for i, s in enumerate(stems)]


def unanswered_parts(parts: Sequence[str], answer: str) -> list[str]:
    """The parts of the question that ``answer`` does not speak of, in order."""
    said = content_stems(strip_markers(answer))
    return [part for part, own in zip(parts, own_words(parts), strict=True) if own and not own & said]
