"""The question's own subject, said again in an answer sentence, must be spoken of by its sources.

A value the sources hold can still answer a question they never speak of. Asked "In what year did the
Berlin Wall get its second coat of paint?", the model wrote "The Berlin Wall got its second coat of
paint in 1989. [1]": 1989 is in [1] (the year the Wall fell), "coat" and "paint" are in no cited
source, and a figure as distinctive as a year may stand anywhere in the cited text (:mod:`.evidence`).

So the words a sentence takes from its question are looked up in the text it cites. When a run of
them (stop words aside) is in none of it, the sentence answers a question its sources do not speak
of. A word counts as found when the sources hold its stem or a word that shares its first five
letters ("demolition" for "demolished"), so that a plain paraphrase of the question still passes. The
words that only say what kind of answer is asked ("year", "default", "maximum") are not looked up: a
source says "in 1989", not "in the year 1989".

A word the question names a command, an option or a function by ("What does the apachectl doctor
command check?") is a name, not a relation word: a sentence that repeats it fails when no cited source
holds it, however short the run. apachectl has no doctor command; the default model described its
graceful command under that name, from a page that never says "doctor".

A subcommand named with its command ("the git worktree archive subcommand") must be spoken of as
such: the two words together, or the subcommand as a term of a list ("- prune:" among worktree's
subcommands). git worktree has no archive subcommand; the model described git archive under that name,
from git archive's page, which says "archive" and, elsewhere, "worktree".

A word is spoken of, too, where a source names it as a part of an identifier: Python's manual gives
the default limit "for int/str conversion" as "4300 digits as provided in
sys.int_info.default_max_str_digits", and says "int" and "str" as words only paragraphs away.

A figure the question gives after a label ("version 7 UUIDs") is a premise too, said again: asked
"Which function of Node.js's crypto module generates time-ordered version 7 UUIDs?" (Node 18 has none),
the default model answered crypto.randomUUID(), citing its entry: "Generates a random RFC 4122 version 4
UUID." The question's own figures are otherwise left out of the value check, so the claim passed.
:func:`relabelled` fails a sentence that says the question's "label N" again where the cited text
gives that label only other figures and never writes N.

A sentence that gives a figure fails on a run of two such words; any other on a run of three. A
question's relation words ("the capital city of", "the lead vocalist of") are often unwritten where a
name answers them ("Seoul is the capital"): on FanOutQA's sub-questions, a run of two flagged eleven
correct answers in ninety, a run of three one. Nothing is held to this when the question names a
verbatim term (``timeit.timeit()``, ``%j``, ``maintenance_work_mem``) that the cited text holds:
reference text on a named term is terse (a signature, a table row) and rarely says the question's
words again, and there the check of the term itself tells a real subject from an invented one.
"""

from __future__ import annotations

import re

from groundglass.answer.grounding.evidence import Evidence
from groundglass.answer.grounding.wording import FILLER_STEMS, STOP_WORDS, WORD, content_stems, stem
from groundglass.answer.querytext import literal_terms

# Words that name the kind of answer a question wants, not what it is about.
_ASKING = frozenset(
    stem(w)
    for w in """year years date dates day days month months century decade time times era age ages
    number numbers many much amount count total default defaults maximum minimum max min largest
    smallest highest lowest first last size long far old type kind sort version percent percentage
    get gets got happen happened occur occurred take took place exact exactly approximately roughly
    usually typically currently today ago since until starting""".split()
)
_PREFIX = 5  # letters a paraphrase's word must share with the question's
# a word the question names something by, before the kind of thing it is: "the apachectl doctor command"
_ROLE_NAMED = re.compile(
    r"\b([A-Za-z][\w-]+)\s+(command|subcommand|option|flag|directive|function|method|pragma|keyword)\b"
)
# a subcommand named with its command: "the git worktree archive subcommand"
_SUBCOMMAND = re.compile(r"\b([A-Za-z][\w-]+)\s+([A-Za-z][\w-]+)\s+subcommand\b")
FIGURE_RUN = 2  # unspoken words in a row that fail a sentence giving a figure
OTHER_RUN = 3  # ... any other sentence


def unspoken(sentence: str, question: str, evidence: Evidence, shortest: int = FIGURE_RUN) -> list[str]:
    """The longest run of the question's words (stop words aside) that ``sentence`` (markers removed)
    says again and that no cited source speaks of, when it is ``shortest`` words or more; else
    nothing. A run, not a count: each of "struct format 'q'" and "array type code 'd'" may be
    unwritten in a table that gives both sizes, while "second coat of paint" is one thing the sources
    never mention."""
    if any(evidence.contains_term(t.lower()) for t in literal_terms(question)):
        return []  # reference text on a named term: see the module's docstring
    repeated = subject_words(sentence) & subject_words(question)
    for parent, name in _SUBCOMMAND.findall(question):
        if (
            parent.lower() not in STOP_WORDS
            and stem(name) in repeated
            and not _subcommand(parent, name, evidence)
        ):
            return [f"{parent} {name} subcommand"]
    for name, role in _ROLE_NAMED.findall(question):
        if name.lower() not in STOP_WORDS and stem(name) in repeated and not _spoken(stem(name), evidence):
            return [f"{name} {role}"]  # "the apachectl doctor command": a name, however short
    run: list[str] = []
    longest: list[str] = []
    for word in WORD.findall(question):
        if word.lower() in STOP_WORDS:
            continue
        w = stem(word)
        if w in repeated and not _spoken(w, evidence):
            run.append(word)
            longest = max(longest, list(run), key=len)  # a copy: run goes on growing
        else:
            run = []
    return [" ".join(longest)] if len(longest) >= shortest else []


def _subcommand(parent: str, name: str, evidence: Evidence) -> bool:
    """Whether the cited text speaks of ``parent``'s subcommand ``name``: says the two together ("git
    worktree add"), or has ``name`` as a term of a list ("- prune:", in the list of worktree's
    subcommands)."""
    name = re.escape(name.lower())
    together = rf"(?<![\w-]){re.escape(parent.lower())}\s+{name}(?![\w-])"
    term = rf"(?:^|\s)-\s+{name}(?![\w-])[^:.]{{0,60}}:"
    return re.search(together, evidence.text) is not None or re.search(term, evidence.text) is not None


def subject_words(text: str) -> set[str]:
    """The stems of what ``text`` is about: its content words but those that only say what kind of
    answer is asked ("year", "default") or report on the sources."""
    return {w for w in content_stems(text) if w not in FILLER_STEMS and w not in _ASKING and w.isalpha()}


def _spoken(word: str, evidence: Evidence) -> bool:
    if word in evidence.stems:
        return True
    if any("_" in s and word in s.split("_") for s in evidence.stems):
        return True  # a part of a name: "int/str conversion" is spoken of by "sys.int_info.max_str_digits"
    if len(word) < _PREFIX:  # a unit the sources write with its power: "km" as "km2"
        return any(s.startswith(word) and s[len(word) :].isdigit() for s in evidence.stems)
    prefix = word[:_PREFIX]
    return any(s.startswith(prefix) for s in evidence.stems)


# "version 7", "level 6": a word and the whole number it labels
_LABELLED = re.compile(r"\b([a-z][a-z-]{2,})\s+(\d+)\b(?![.,]\d)", re.IGNORECASE)


def relabelled(sentence: str, question: str, evidence: Evidence) -> list[str]:
    """The question's "label N" ("version 7") that ``sentence`` says again where the cited text gives
    that label other figures ("version 4") and never writes N at all (module docstring)."""
    asked = {(w.lower(), n) for w, n in _LABELLED.findall(question) if w.lower() not in STOP_WORDS}
    out: list[str] = []
    for label, n in _LABELLED.findall(sentence):
        if (label.lower(), n) not in asked:
            continue
        given = re.findall(rf"(?<![\w-]){re.escape(label.lower())}\s+(\d+)\b(?![.,]\d)", evidence.text)
        written = re.search(rf"(?<![\w.]){int(n)}(?![\w]|[.,]\d)", evidence.text)
        if given and written is None:
            out.append(f"{label} {n}")
    return out
