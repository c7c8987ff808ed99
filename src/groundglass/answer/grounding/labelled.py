"""A default a source states for the asked name under a label: "| Default: | MaxSpareServers 10 |".

Apache httpd's manual heads every directive's entry with a table (Description, Syntax, Default,
Context), and the Default row begins with the directive's name. Asked "What is the default value of
MaxSpareServers for the prefork MPM?", the default model answered 5 from StartServers' entry ("...
MaxSpareServers ... prefork defaults to 5"), beside the prefork page's row "| Default: |
MaxSpareServers 10 |", which it did not cite. The value check found a 5 near "MaxSpareServers" in the
text it cited, and passed it.

Node.js's manual says it the other way round: a list item opens with the option's name and ends with
its default ("- maxSessionMemory<number> Sets the maximum memory ... Default: 10."). Asked for
maxSessionMemory's default, the model answered 32, the "Default:" of maxSettings, the item before it.

A line labelled Default whose value starts with the name the question asks about, or a list item that
opens with that name and ends with a Default label, states that name's default, whichever source holds
it. A clause that names the asked name and gives it a default that no
such line states (another figure, or another on/off word) is sent back with the line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundglass.answer.grounding import clauses
from groundglass.answer.grounding.defaults import ITEM_HEAD, asks_default
from groundglass.answer.grounding.figures import numbers, same_number
from groundglass.answer.querytext import literal_terms, words

# "| Default: | MaxSpareServers 10 |" (a table row), "Default: MaxSpareServers 10" (a label)
_LABEL = re.compile(r"^\s*\|?\s*default\s*:\s*\|?\s*(?P<value>.+?)\s*\|?\s*$", re.IGNORECASE)
# "- maxSessionMemory<number> Sets ... Default: 10." (a list item); the last label is the item's own
_ITEM = re.compile(ITEM_HEAD + r"(?=[\s<(:])(?P<rest>.*)\bdefault:\s*(?P<value>\S.*?)\.?\s*$", re.I)
# the words an on/off default is said with
_SWITCHES = frozenset("on off yes no true false enabled disabled none".split())


def stated(name: str, texts: Sequence[str]) -> list[tuple[int, str, str]]:
    """(the text's position, the line, the value as written) of each line of ``texts`` labelled
    Default whose value starts with ``name`` (the rest of it is the value)."""
    out: list[tuple[int, str, str]] = []
    for i, text in enumerate(texts):
        for line in text.splitlines():
            item = _ITEM.match(line)
            if item is not None and item.group("name").lower() == name.lower():
                head = " ".join(f"- {item.group('name')}{item.group('rest')}".split())
                short = head if len(head) <= 160 else f"{head[:157].rsplit(' ', 1)[0]} ..."
                out.append((i, f"{short} Default: {item.group('value')}.", item.group("value").strip("`* ")))
                continue
            m = _LABEL.match(line)
            if m is None:
                continue
            first, _, rest = m.group("value").partition(" ")
            if rest.strip() and first.strip("`*").lower() == name.lower():
                out.append((i, " ".join(line.split()), rest.strip("`* ")))
    return out


def contradicted(sentence: str, question: str, texts: Sequence[str]) -> tuple[str, int, str] | None:
    """(the default as a source states it, that source's position, its line) when a clause of
    ``sentence`` gives the name ``question`` asks the default of another default than every line of
    ``texts`` labelled Default for it states; None otherwise (module docstring)."""
    if not asks_default(question):
        return None
    for name in literal_terms(question):
        held = stated(name, texts)
        if not held:
            continue
        named = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", re.IGNORECASE)
        for clause in clauses.split(sentence):
            if not named.search(clause):
                continue
            verdicts = [_agrees(value, named.sub(" ", clause)) for _, _, value in held]
            if False in verdicts and True not in verdicts:
                i, line, value = held[0]
                return value.split()[0], i, line
    return None


def _agrees(value: str, clause: str) -> bool | None:
    """Whether ``clause`` states the default ``value``: True, False, or None when it states none of
    the kind ``value`` is (no figure for a figure, no on/off word for an on/off one)."""
    figures = numbers(value)
    if figures:
        said = numbers(clause)
        if not said:
            return None
        return any(same_number(s, f) for s in said for f in figures)
    first = value.split()[0].lower()
    said_words = set(words(clause))
    if first in _SWITCHES:
        switches = said_words & _SWITCHES
        return (first in switches) if switches else None
    return first in said_words or None
