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

Some names are never context, wherever the question puts them: a long option ("Which port does python
-m http.server use by default when started with its --tls-cert option?": the option changes what the
answer is), an option's value named with it ("the -X jitmode option"), an environment variable or a
constant in capitals ("PYTHONJITLEVEL"), a backslash or dot-command ("\\qz", ".autosave"), a name in
quotes ("the 'memoryPressure' event") and a release by its dotted number ("In Python 3.14, what is the
new default pickle protocol?"). Each must be in a source too. On Python's manual the default model
answered such questions with a value or a description taken from the pages about the rest of the
question (8 to 13 seconds each, with a retry); no answerable question of the six documentation sets
names one that its sources leave out.

A parameter is judged by the call's signature. Asked "What is the default maximum nesting depth
accepted by tomllib.loads() (its max_depth argument)?", the search found tomllib's page, whose
signature is ``tomllib.loads(s, /, *, parse_float=float)``, and ElementInclude's
``include(elem, loader=None, base_url=None, max_depth=6)``; the default model wrote "... tomllib.loads()
(its max_depth argument) is 6. [1][2]", and every value of it was in a source. When the question
names a parameter as such ("the P parameter", "its P argument") of a call, and every signature of that
call the sources print lists its parameters without P, the question is declined here too. A signature
that takes more than it names (``**kwargs``, ``*args``, ``...``, one ``options`` object) decides
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundglass.answer.grounding.defaults import signature
from groundglass.answer.grounding.evidence import holds_term
from groundglass.answer.grounding.values import BACKSLASH, UPPER_NAME
from groundglass.answer.querytext import literal_terms
from groundglass.answer.types import Source

# The last part of a dotted name that makes it a file or a host, not an API name.
_FILE_OR_HOST = frozenset(
    """conf cfg ini toml yaml yml json xml html htm txt md rst csv log py pyc js ts c h cpp so dll
    exe sh bat ps1 sql db sqlite gz zip tar com org net io dev edu gov uk de fr""".split()
)
_LATIN = frozenset({"e.g", "i.e", "etc", "vs", "cf"})
# "the max_depth parameter", "its rotate argument", "connect()'s pool_size parameter": a parameter the
# question names as such, by an identifier (one word, or words joined by underscores)
_ASKED_PARAM = re.compile(
    r"(?:\bthe|\bits|'s)\s+(?:default\s+)?`?(?P<param>[A-Za-z_]\w*)`?\s+(?:keyword\s+)?(?:parameter|argument)\b"
)
# a long option, anywhere in the question
_LONG_FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*[A-Za-z0-9]")
# "the -X jitmode option": an option's value, named with it
_FLAG_VALUE = re.compile(
    r"(?<![\w-])(-{1,2}[A-Za-z][\w-]*)\s+([a-z][\w.=-]*)\s+(?:command[- ]line\s+)?(?:option|flag|switch)\b"
)
# a shell's dot-command, called one: "the sqlite3 shell's .autosave dot-command"
_DOT_COMMAND = re.compile(r"(?<![\w.])(\.[a-z][a-z0-9_]+)\s+(?:dot-)?command\b")
# a name in quotes, one token: Node's "the 'memoryPressure' event"
_QUOTED_NAME = re.compile(r"(?<![\w'])['\"`]([A-Za-z_][\w.:-]*[\w])['\"`](?![\w'])")
# "Python 3.15", "In Node.js 22.5", "version 3.14": a release the question names, by its dotted number
_RELEASE = re.compile(
    r"\b(python|node(?:\.js)?|postgresql|sqlite|git|apache|httpd|version|release)\s+v?(\d+(?:\.\d+)+)\b",
    re.IGNORECASE,
)
# parameters a signature does not list by name
_OPEN_ARGS = re.compile(r"\*\*|\*\s*\w|\.\.\.|…|\b(?:options|opts|kwargs|kwds|config|settings)\b")


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
    """The name ``question`` asks about when no source's title or text mentions it, or the parameter it
    asks about when the sources print the call's signature without it ("the max_depth parameter of
    tomllib.loads()"); else None."""
    if not sources:
        return None
    text = "\n".join(f"{s.title}\n{s.text}" for s in sources).lower()
    name = asked_name(question)
    if name is not None and not any(holds_term(text, form.lower()) for form in _forms(name)):
        return name
    for named, forms in named_besides(question):
        if not any(holds_term(text, form.lower()) for form in forms):
            return named
    for release, number in _RELEASE.findall(question):
        if not re.search(rf"(?<![\d.]){re.escape(number)}(?![\d]|\.\d)", text):
            return f"{release} {number}"
    return unlisted_param(question, sources) if name is not None else None


def named_besides(question: str) -> list[tuple[str, list[str]]]:
    """The names ``question`` asks about besides its first term, each with the forms a source may write
    it in: every long option, an option's value named with it ("the -X jitmode option": "jitmode"), an
    environment variable or constant in capitals (which no other pattern takes for a name), a backslash
    or dot-command, and a name in quotes."""
    out: list[tuple[str, list[str]]] = []
    for m in _FLAG_VALUE.finditer(question):
        out.append((f"{m.group(1)} {m.group(2)}", [m.group(2)]))
    out += [(flag, [flag]) for flag in dict.fromkeys(_LONG_FLAG.findall(question))]
    out += [(upper, [upper]) for upper in dict.fromkeys(UPPER_NAME.findall(question))]
    commands = [*BACKSLASH.findall(question), *_DOT_COMMAND.findall(question)]
    out += [(command, [command]) for command in dict.fromkeys(commands)]
    out += [(f"'{quoted}'", [quoted]) for quoted in dict.fromkeys(_QUOTED_NAME.findall(question))]
    return out


def unlisted_param(question: str, sources: Sequence[Source]) -> str | None:
    """ "the P parameter of C()" when ``question`` asks about parameter P of the call C and every
    signature of C the sources print lists its parameters without P; else None. A signature that takes
    more than it names (``**kwargs``, ``*args``, ``...``) or passes its settings in one object
    (Node's ``options``) may take P by another name, and says nothing."""
    asked = _ASKED_PARAM.search(question)
    calls = [t.removesuffix("()") for t in literal_terms(question) if t.endswith("()") or f"{t}(" in question]
    if asked is None or not calls:
        return None
    param, call = asked.group("param"), calls[0]
    printed = [
        found[1]
        for s in sources
        for line in s.text.splitlines()
        if (found := signature(line)) and _same_call(found[0], call)
    ]
    if not printed or any(_OPEN_ARGS.search(args) for args in printed):
        return None
    if any(re.search(rf"(?<![\w.]){re.escape(param.lower())}(?!\w)", args) for args in printed):
        return None
    return f"the {param} parameter of {call}()"


def _same_call(printed: str, asked: str) -> bool:
    """Whether a signature's name is the asked call's: the same dotted name, or one the end of the other
    ("ZipFile.extractall" for "zipfile.ZipFile.extractall")."""
    a, b = printed.lower(), asked.lower()
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _forms(name: str) -> list[str]:
    """How a source may write ``name``: as asked, a call without its parentheses, a dotted name by its
    last part."""
    bare = name.removesuffix("()")
    forms = [bare]
    if "." in bare.strip("."):
        forms.append(bare.rsplit(".", 1)[-1])
    return forms
