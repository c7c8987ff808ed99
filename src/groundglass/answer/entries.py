"""Which entry of a definition list a "which option" question describes.

A program's manual page lists its options as a definition list, one short description each, and a
question about an option often says what the option does in its description's own words: "Which
option of ab sets the number of multiple requests to perform at a time?" is ab's "-c concurrency:
Number of multiple requests to perform at a time." The default model answered -n, whose description
("Number of requests to perform for the benchmarking session") shares most of those words, and the
value check passed it: "-n" is in the cited text. Asked which option of httpd runs syntax tests, it
wrote "The option ... is [1]." twice, with "- -t: Run syntax tests for configuration files only." in
[1], and the answer was declined.

:func:`described` finds the entry whose description holds the most of what the question says the
option does, when one clearly does; the gate sends back a sentence that names another entry of the
same list instead (:func:`named_otherwise`), and after failed drafts the entry is quoted
(:func:`groundglass.answer.extractive.described_entry`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from groundglass.answer.definitions import is_term, term_name
from groundglass.answer.querytext import STOPWORDS, shared_run
from groundglass.answer.sentences import without_bullet

# "Which (command-line) option/flag/switch/directive/command ..." and "What option ..."
_ASKS_ENTRY = re.compile(
    r"^\s*(?:which|what)\s+(?:[\w-]+\s+){0,2}?(?:option|flag|switch|argument|directive|command|"
    r"dot-command|subcommand|setting|parameter|variable|key|attribute)s?\b",
    re.IGNORECASE,
)
MIN_RUN = 3  # content words of the question a description says in the question's order
# ... for the entry to be quoted as the answer, with no draft that passed: "makes git log" is the
# question's frame ("Which variable makes git log print commits in colour?"), and log.mailmap's "If
# true, makes git log show mailmap-ed authors" says nothing of colour
QUOTED_RUN = 4
MARGIN = 1  # ... more than any other entry's description does


@dataclass(frozen=True)
class Entry:
    source: int  # position of the source (0-based)
    term: str  # as the term line writes it: "-c concurrency"
    description: str  # its first line

    def line(self) -> str:
        """The entry as one line: "-c concurrency: Number of multiple requests to perform at a time." """
        return f"{self.term}: {self.description}"


def entries(text: str) -> list[tuple[str, str]]:
    """(term, the first line of its description) of each entry of ``text``'s definition lists."""
    lines = text.splitlines()
    out: list[tuple[str, str]] = []
    for i, line in enumerate(lines[:-1]):
        following = lines[i + 1].strip()
        if is_term(line) and following and not is_term(following):
            out.append((term_name(line), without_bullet(following)))
    return out


def described(question: str, sources: Sequence[str], min_run: int = MIN_RUN) -> Entry | None:
    """The entry of ``sources`` whose description says what the question asks for, when the question
    asks which option (or directive, command, configuration variable...) does something and one
    entry's description says clearly more of the question's words in the question's order than any
    other (a run of ``min_run`` content words, stop words aside: "git log will act as if the
    --follow option" runs "git log act as if --follow" on; :data:`MARGIN` more than the next entry's);
    None otherwise. Words in order, not shared words: the question names the program too ("ab, the
    Apache HTTP server benchmarking tool"), and -k's "perform multiple requests within one HTTP
    session" shares as many of its words as -c's description."""
    if not _ASKS_ENTRY.search(question):
        return None
    scored: list[tuple[int, Entry]] = []
    for i, text in enumerate(sources):
        for term, description in entries(text):
            run = shared_run(question, description, skip=STOPWORDS)
            scored.append((len(run), Entry(i, term, description)))
    scored.sort(key=lambda pair: -pair[0])
    if not scored or scored[0][0] < min_run:
        return None
    best, entry = scored[0]
    runner_up = max((n for n, e in scored[1:] if _name(e.term) != _name(entry.term)), default=0)
    return entry if best - runner_up >= MARGIN else None


def named_otherwise(sentence: str, question: str, sources: Sequence[str]) -> tuple[str, Entry] | None:
    """(the other entry's name as the sentence writes it, the entry the question describes) when
    ``sentence`` names another entry of the sources' lists than the one :func:`described` finds, and
    not that one; None otherwise."""
    entry = described(question, sources)
    if entry is None:
        return None
    name = _name(entry.term)
    if _said(name, sentence):
        return None
    for text in sources:
        for term, _ in entries(text):
            other = _name(term)
            # a name the question says itself is what the entry is described by ("act as if --follow
            # was given"), not another answer
            if other != name and _said(other, sentence) and not _said(other, question):
                return other, entry
    return None


def _name(term: str) -> str:
    """An entry's name: the term's first word ("-c" of "-c concurrency")."""
    return term.split()[0] if term.split() else term


def _said(name: str, sentence: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", sentence) is not None
