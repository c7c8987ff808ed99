"""An answer read off a source when the model has failed to write a checked one.

Asked "What are the default width of pprint.PrettyPrinter and the default width of textwrap.fill()?",
the 1.5B model answered the second part "80" (pprint's) in every draft, refused each time, although
``textwrap.fill(text, width=70, ...)`` was among its sources; told what was wrong and pointed at the
line, it declined. A question about the default of a parameter of a callable that a source prints the
signature of is answered by that signature alone: "The default width of textwrap.fill() is 70. [3]".
That sentence is built from the question's own names and the signature's value, so it says nothing a
source does not; it is still checked like any other, and used only after the model's drafts failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from groundglass.answer.grounding import check
from groundglass.answer.grounding.defaults import asks_default
from groundglass.answer.querytext import Verbatim
from groundglass.answer.types import Source


def signature_default(question: str, sources: Sequence[Source]) -> str | None:
    """ "The default <parameter> of <callable>() is <value>. [n]" from the first source that prints the
    signature of a callable ``question`` names with a parameter it asks the default of; None when the
    question asks no default, or no source prints one, or the question names several such defaults (one
    sentence would answer only one of them)."""
    if not asks_default(question):
        return None
    verbatim = Verbatim.of(question)
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for n, source in enumerate(sources, start=1):
        for name, param, value in verbatim.signature_defaults(source.text):
            found.setdefault((name, param), (n, value))
    if len(found) != 1:
        return None
    [((name, param), (n, value))] = found.items()
    sentence = f"The default {param} of {name}() is {value}. [{n}]"
    return sentence if check(sentence, question, [sources[n - 1].text]).ok else None
