"""A question about a name that no source mentions is declined before the model writes anything.

Asked "What is the default value of RewriteMaxRules in mod_rewrite?" (httpd has no such directive),
the search found mod_rewrite's pages, the default model wrote "The default value of RewriteMaxRules in
mod_rewrite is 1000. [1][2]" twice, and the gate refused both drafts: twelve seconds to decline, and
a decline that rests on the gate catching every such draft. The name the question asks about was in
none of the sources the model was given, so no answer could be grounded in them.

The name is the question's first verbatim term (:func:`groundglass.answer.querytext.literal_terms`):
a snake_case, CamelCase or dotted name, a call, a flag or a dot-command, the thing the question is
about ("RewriteMaxRules" before "mod_rewrite", "sys.getgilinterval"). Later names are often context
that the chosen passages need not repeat ("the %q substitution of sqlite3_mprintf()": the printf
page's %q row does not name the function). When the first term is a format code (``%q``: tables write
it bare, "q") or a file or host name ("httpd.conf", "example.com": named to say where a setting
lives), nothing is declined here and the gate judges the drafts. A call is found by its name
("instr()" in "instr(X,Y)") and a dotted name by its last part as well ("http.HTTPStatus.IM_A_TEAPOT"
in a table of members), as reference pages write them. Each part of a question of several parts is
judged on its own (:func:`groundglass.answer.writer.answer_parts`).
"""

from __future__ import annotations

from collections.abc import Sequence

from groundglass.answer.grounding.evidence import holds_term
from groundglass.answer.querytext import literal_terms
from groundglass.answer.types import Source

# The last part of a dotted name that makes it a file or a host, not an API name.
_FILE_OR_HOST = frozenset(
    """conf cfg ini toml yaml yml json xml html htm txt md rst csv log py pyc js ts c h cpp so dll
    exe sh bat ps1 sql db sqlite gz zip tar com org net io dev edu gov uk de fr""".split()
)
_LATIN = frozenset({"e.g", "i.e", "etc", "vs", "cf"})


def asked_name(question: str) -> str | None:
    """The name ``question`` asks about: its first verbatim term (abbreviations aside), or None when
    that is a format code or a file or host name."""
    terms = [t for t in literal_terms(question) if t.lower() not in _LATIN]
    if not terms:
        return None
    first = terms[0]
    if first.startswith("%"):
        return None
    if "." in first.strip(".") and first.rsplit(".", 1)[-1].lower() in _FILE_OR_HOST:
        return None
    return first


def unmentioned_name(question: str, sources: Sequence[Source]) -> str | None:
    """The name ``question`` asks about when no source's title or text mentions it, else None."""
    name = asked_name(question)
    if name is None or not sources:
        return None
    text = "\n".join(f"{s.title}\n{s.text}" for s in sources).lower()
    return None if any(holds_term(text, form.lower()) for form in _forms(name)) else name


def _forms(name: str) -> list[str]:
    """How a source may write ``name``: as asked, a call without its parentheses, a dotted name by its
    last part."""
    bare = name.removesuffix("()")
    forms = [bare]
    if "." in bare.strip("."):
        forms.append(bare.rsplit(".", 1)[-1])
    return forms
