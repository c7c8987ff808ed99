"""Grounding the values of an answer, not its words.

A sentence that restates the question overlaps the sources as much as the question does, so word
overlap and embedding similarity call it supported whatever value it adds ("The default value of X
is false [1]"). What a sentence *adds* beyond the question is what needs a source:

* numbers and quantities (``1,000`` = ``1000`` = ``1k`` = ``one thousand``; ``10 MB`` = ``10MB``;
  ``0.5`` = ``.5``; a figure rounded from the source's, ``8,849 m`` from ``8,848.86 m``, passes);
* identifiers: ``snake_case``, ``dotted.names``, ``--flags``, ``CamelCase``, paths, URLs, versions
  such as ``3.11.2``, and ``code spans`` (each name and number in them);
* quoted text and capitalised names (not the sentence's first word);
* yes/no claims: ``true``/``false``, ``enabled``/``disabled``, ``on``/``off``, ``by default``,
  ``deprecated``, ``required``, ``optional`` (case-insensitive: ``True`` = ``true``);
* limits said in words (``unlimited``, ``infinite``), in a cited sentence that names what the claim
  limits ("the maximum number of *columns* ... is unlimited").

:func:`check` looks for each of them in the text of the sources the sentence cites. A value that is
also in the question needs no source (asking about 1990 does not oblige a source to print "1990"),
with one exception: an identifier or version the question asks about is the subject of the claim,
so a source that never names it cannot support anything said about it (a setting that does not
exist, a future version). Numbers and yes/no words are common, so those must appear near the
sentence's other words: in a source sentence (a table row, a line of a config listing) that shares
a word with the claim. Figures that rarely occur by chance (three significant digits or more, a
decimal, a unit: "1961", "0.5", "30 seconds") may be anywhere in the cited sources.

Computed values are allowed where the sentence or the question says so: a total or a difference of
two source numbers next to words like "total", "difference" or "years after" (or for a "how long"
question), small counts for a "how many" question, and "two Nobel prizes" where the sources name a
Nobel prize exactly twice. Everything else a source does not print is reported unsupported.

:func:`restates_question` is the other half: a sentence whose words beyond the question's (and the
citation markers, and filler such as "described" or "mentioned") are none adds nothing: "The X of a
Y starts with [1][2]." The support check fails it.

The package, one job a module:

* :mod:`.wording`: stems, stop words and :func:`restates_question`;
* :mod:`.figures`: numbers with their units and precision;
* :mod:`.values`: the checkable values of a sentence;
* :mod:`.evidence`: the cited sources' text and the lookups in it;
* :mod:`.checker`: :func:`check`, one sentence against its sources;
* :mod:`.members` and :mod:`.defaults`: a named part of a named thing, and a default its signature
  contradicts;
* :mod:`.labelled`: a default a source's "Default:" line states otherwise.
"""

from __future__ import annotations

from groundglass.answer.grounding.checker import Check, check
from groundglass.answer.grounding.evidence import Evidence, evidence_for
from groundglass.answer.grounding.figures import Number, numbers
from groundglass.answer.grounding.values import Value, values_of
from groundglass.answer.grounding.wording import restates_question

__all__ = [
    "Check",
    "Evidence",
    "Number",
    "Value",
    "check",
    "evidence_for",
    "numbers",
    "restates_question",
    "values_of",
]
