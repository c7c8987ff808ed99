"""One answer sentence checked against the sources it cites: :func:`check`.

The sentence's values (:mod:`.values`) are looked up in the cited text (:mod:`.evidence`); a value
the question already holds needs no source, except an identifier or version the question asks about,
which is the subject of the claim. Numbers and yes/no words are looked for near the sentence's other
words (its anchors), since they are common.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from groundglass.answer.grounding import clauses, defaults, members, pairs, premise
from groundglass.answer.grounding.evidence import (
    Evidence,
    bound_found,
    code_found,
    identifier_found,
    may_compute,
    name_found,
    number_found,
    quoted_found,
)
from groundglass.answer.grounding.figures import Number, numbers, same_number
from groundglass.answer.grounding.values import CODE, POLARITY, identifiers, mask_spans, norm_ident, values_of
from groundglass.answer.grounding.wording import (
    FILLER_STEMS,
    clean,
    content_stems,
    restates_question,
    stem,
    words,
)


@dataclass
class Check:
    """What :func:`check` found for one sentence."""

    unsupported: list[str] = field(default_factory=list)  # values no cited source holds
    restates_question: bool = False  # adds nothing beyond the question
    values: list[str] = field(default_factory=list)  # every value it added (or named) that was checked

    @property
    def ok(self) -> bool:
        return not self.unsupported and not self.restates_question


def check(
    sentence: str, question: str, cited_texts: Sequence[str], evidence: Evidence | None = None
) -> Check:
    """Which values of ``sentence`` (an answer sentence, markers allowed) the ``cited_texts`` do not
    hold, and whether it says anything beyond ``question``. ``evidence``: :meth:`Evidence.of` the same
    texts, when the caller checks many sentences against them."""
    text = clean(sentence)
    result = Check(restates_question=restates_question(text, question))
    if not text:
        return result
    evidence = evidence or Evidence.of(cited_texts)
    asked = {(v.kind, norm_ident(v.text)) for v in values_of(question)}
    asked_numbers = numbers(question)
    asked_stems = content_stems(question)
    claimed = values_of(text)
    number_claims = _claimed_numbers(text)
    # Anchors: the sentence's content words other than its values (the subject the values are about).
    value_stems = {stem(w) for v in claimed if v.kind == "polarity" for w in words(v.text)}

    def anchors_of(part: str) -> set[str]:
        return {w for w in content_stems(part) - value_stems if w not in FILLER_STEMS and not w.isdigit()}

    anchors = anchors_of(text)
    near = evidence.windows(anchors)
    for v in claimed:
        key = (v.kind, norm_ident(v.text))
        from_question = key in asked or (v.kind in ("name", "polarity") and stem(v.text) in asked_stems)
        if v.kind in ("identifier", "version"):  # asked about or added: a source must name it
            found = identifier_found(v.text, evidence)
        elif v.kind == "code":
            found = identifier_found(v.text, evidence) if from_question else code_found(v.text, evidence)
        elif from_question or v.kind == "number":
            continue  # numbers are checked below, with their units
        elif v.kind == "quoted":
            found = quoted_found(v.text, evidence)
        elif v.kind == "name":
            found = name_found(v.text, evidence)
        elif v.kind == "bound":
            found = bound_found(v.text, text, evidence)
        else:  # polarity: the same yes/no class (or the word itself) near the claim's subject
            cls = POLARITY.get(v.text, v.text)
            found = any(cls in evidence.polarity[i] or v.text in evidence.polarity[i] for i in near)
        result.values.append(v.text)
        if not found:
            result.unsupported.append(v.text)
    # the question's own figures, said again, are left out; only the same value counts: rounding it
    # would let "protocol version 4" pass unchecked as the "3.8" of "... starting with Python 3.8?"
    figures = _asked_aside(number_claims, asked_numbers)
    found = [n for n in figures if number_found(n, text, question, evidence, near)]
    for n in figures:
        result.values.append(n.text)
        # "1073741824 bytes (1GB)": a figure found, said again in another unit, is found too
        if n not in found and not any(o is not n and same_number(n, o) for o in found):
            result.unsupported.append(n.text)
    parts = members.unsupported_parts(text, question, evidence)
    parts += defaults.contradicted(text, question, evidence)
    parts += defaults.prose_contradicted(text, question, evidence)
    parts += defaults.borrowed(text, question, evidence)
    parts += defaults.unheld_word(text, question, evidence)
    parts += pairs.mispaired(text, evidence)
    parts += premise.relabelled(text, question, evidence)
    result.values += [p for p in parts if p not in result.values]
    result.unsupported += parts
    if not may_compute(text, question):
        parts = clauses.coordinated(
            text, lambda part: _asked_aside(_claimed_numbers(part), asked_numbers), anchors_of
        )
        result.unsupported += clauses.unsupported(parts, evidence)
    if not result.unsupported:  # an answer to what no cited source speaks of
        run = premise.FIGURE_RUN if figures else premise.OTHER_RUN
        result.unsupported += premise.unspoken(text, question, evidence, run)
    result.unsupported = list(dict.fromkeys(result.unsupported))
    return result


def _claimed_numbers(text: str) -> list[Number]:
    """The figures ``text`` states, outside code spans and identifiers."""
    return numbers(mask_spans(CODE.sub(" ", text), [t for _, t in identifiers(text)]), claims=True)


def _asked_aside(claimed: list[Number], asked: list[Number]) -> list[Number]:
    """``claimed`` without the question's own figures said again."""
    return [
        n
        for n in claimed
        if not any(math.isclose(n.value, q.value, rel_tol=1e-9, abs_tol=1e-12) for q in asked)
    ]
