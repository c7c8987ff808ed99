"""Coordinated claims: "The X is 80, and the Y is also 80." checked one clause at a time.

A two-part question gets a two-part sentence, and a small model often copies the first clause's value
into the second ("... of textwrap.fill() is also 80") or takes both from the one source it read. The
sentence-level check cannot see that: the value is in a cited source, near words the sentence uses.
So a sentence whose clauses each state a number is split, and each clause's figures are checked
against what that clause alone is about, its *own* words (those the other clauses do not share):

* the cited sources must name that subject: one of the clause's own words occurs in them (a clause
  about ``textwrap.fill()``, cited only to ``pprint``'s page, fails);
* a common figure (a small bare integer) must sit near one of the clause's own words (in its source
  sentence, a neighbour, or the header of its table row), not just near some word of the sentence;
* a figure said for two subjects ("80 ... also 80", "1e-09 ... 1e-09") must sit near two of each
  clause's own words: one passage about the one subject that happens to share a word with the other
  ("within about 9 decimal digits" on ``math.isclose``'s page) does not support both.

Half-coverage rules were tried and dropped: a clause's own words include plain ones ("default",
"level") that a source spells differently (``compresslevel=9``), and they failed right answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from groundglass.answer.grounding.evidence import Evidence
from groundglass.answer.grounding.figures import Number, distinctive, same_number

# Where a coordinated sentence splits into clauses: a semicolon, ", and/but/while/whereas", or a bare
# "and the/its" that starts a new subject ("is 25 and the default port of ... is 8000").
_BOUNDARY = re.compile(
    r"\s*;\s*|,\s*(?:and|but|while|whereas)\s+|\s+(?:while|whereas)\s+|\s+and\s+(?=(?:the|its)\s)",
    re.IGNORECASE,
)
WINDOW = 1  # sentences either side of the figure that may hold the clause's words
REPEATED_NEED = 2  # own words near a figure that the sentence also states for another subject


@dataclass
class Clause:
    text: str
    numbers: list[Number]  # the figures it states
    own: set[str]  # its anchor stems that no other clause of the sentence has


def split(text: str) -> list[str]:
    """The clauses of ``text`` (one item when it is not coordinated)."""
    return [part for part in _BOUNDARY.split(text) if part.strip()]


def coordinated(
    text: str,
    claim_numbers: Callable[[str], list[Number]],
    anchors_of: Callable[[str], set[str]],
) -> list[Clause]:
    """The clauses of ``text`` when at least two of them state a figure; otherwise ``[]``.

    ``claim_numbers``: the figures a piece of text claims; ``anchors_of``: its anchor stems."""
    parts = split(text)
    if len(parts) < 2:
        return []
    found = [(part, claim_numbers(part), anchors_of(part)) for part in parts]
    if sum(1 for _, nums, _ in found if nums) < 2:
        return []
    clauses = []
    for i, (part, nums, anchors) in enumerate(found):
        others = set().union(*(a for j, (_, _, a) in enumerate(found) if j != i))
        clauses.append(Clause(part, nums, {a for a in anchors - others if len(a) > 1}))
    return clauses


def _sentences_near(evidence: Evidence, n: Number) -> list[set[str]]:
    """For each source sentence stating ``n``: the stems of it and its neighbours in the same source."""
    out = []
    for i, nums in enumerate(evidence.sentence_numbers):
        if any(same_number(n, e) for e in nums):
            lo, hi = max(0, i - WINDOW), min(len(evidence.sentences), i + WINDOW + 1)
            same = [j for j in range(lo, hi) if evidence.source[j] == evidence.source[i]]
            out.append(set().union(*(evidence.sentence_stems[j] for j in same)))
    return out


def unsupported(clauses: list[Clause], evidence: Evidence) -> list[str]:
    """The figures of ``clauses`` that their own subject's passages do not state."""
    repeated = _repeated(clauses)
    out: list[str] = []
    for clause in clauses:
        if not clause.numbers or not clause.own:
            continue
        if not clause.own & evidence.stems:
            out += [n.text for n in clause.numbers]  # the sources are about something else
            continue
        for n in clause.numbers:
            if n.value not in repeated and distinctive(n):
                continue  # a rare figure: the sentence-level check finds it anywhere in the sources
            need = min(REPEATED_NEED, len(clause.own)) if n.value in repeated else 1
            if not any(len(clause.own & stems) >= need for stems in _sentences_near(evidence, n)):
                out.append(n.text)
    return out


def _repeated(clauses: list[Clause]) -> set[float]:
    """Values stated by more than one clause."""
    seen: dict[float, int] = {}
    for clause in clauses:
        for value in {n.value for n in clause.numbers}:
            seen[value] = seen.get(value, 0) + 1
    return {v for v, count in seen.items() if count > 1}
