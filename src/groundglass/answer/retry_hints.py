"""The source lines pointed out to the model when its first draft failed its check.

The retry names the source sentences closest to the question that say more than the question does,
so the model is pointed at the line that answers it rather than told only what was wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from groundglass.answer import cite, grounding
from groundglass.answer.types import Source


def closest_sentences(
    question: str, sources: Sequence[Source], encoder: cite.Encoder, *, most: int = 3, floor: float = 0.3
) -> list[tuple[int, str]]:
    """The source sentences closest to ``question`` that say more than the question, best first, with
    their source numbers, for a retry's hint: at most ``most``, each within ``floor`` (MiniLM cosine).

    Closest is MiniLM cosine plus the rarity-weighted share of the question's words the sentence
    holds (what :mod:`condense` ranks by). One sentence was not enough: for "Which pickle protocol
    version is the default starting with Python 3.8?" the closest was "Protocol version 5 was added in
    Python 3.8.", and the model, pointed at it alone, declined; the answer ("Changed in version 3.8: The
    default protocol is 4.") came second."""
    from groundglass.answer.condense import lexical_scorer
    from groundglass.answer.sentences import split_sentences

    # a sentence made of the question's own words ("It is the default protocol starting with Python
    # 3.8.") would only lead the model to restate the question again
    numbered = list(
        dict.fromkeys(
            (n, s.lstrip("-*• ").strip())
            for n, src in enumerate(sources, start=1)
            for s in split_sentences(src.text)
            if 20 <= len(s) <= 400 and not grounding.restates_question(s, question)
        )
    )
    if not numbered:
        return []
    vectors = encoder.encode([question, *[s for _, s in numbered]])
    cosine = vectors[1:] @ vectors[0]
    lexical = lexical_scorer([s for _, s in numbered], question)
    scored = [
        (float(c) + lexical(s), (n, s)) for c, (n, s) in zip(cosine, numbered, strict=True) if c >= floor
    ]
    scored.sort(key=lambda x: -x[0])
    return [pair for _, pair in scored[:most]]
