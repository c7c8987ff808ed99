"""Typed events the engine yields while it answers, in order:

``ImagesRead`` (once, only for questions with images: the visual facts) -> ``StepDone`` (one per
search of a multi-step answer; with a reasoning trace, the ``<think>`` tokens come with them) ->
``SourcesFound`` (once, as soon as retrieval is done) -> ``Token`` (many) -> ``Done`` (once, with the
finished :class:`~groundglass.answer.types.Answer`: citations checked, attribution, usage).
An ``ErrorEvent`` replaces the rest of the stream when something fails mid-way.

Each event is its own class, so a consumer tells them apart with ``isinstance`` (or ``match``) and
reads attributes. ``ImagesRead`` and ``StepDone`` carry their payload in the JSON form the API streams
(typed dicts: :class:`~groundglass.answer.vision.facts.FactsRecord`,
:class:`~groundglass.answer.research.StepRecord`), with attributes for what the faces show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from groundglass.answer.types import Answer, Source

if TYPE_CHECKING:
    from groundglass.answer.research import StepRecord
    from groundglass.answer.vision.facts import FactsRecord


@dataclass
class ImagesRead:
    facts: list[FactsRecord]  # per image: text, labels with scores, caption, metadata


@dataclass
class SourcesFound:
    sources: list[Source]
    queries: list[str]


@dataclass
class StepDone:
    step: StepRecord  # one search of a multi-step answer: id, query, sources, partial answer, time

    @property
    def query(self) -> str:
        """What this step searched (placeholders filled in)."""
        return self.step["query"]

    @property
    def urls(self) -> list[str]:
        """The addresses of the sources this step kept, best first."""
        return [s["url"] for s in self.step["sources"]]

    @property
    def seconds(self) -> float:
        return self.step["seconds"]


@dataclass
class Token:
    text: str


@dataclass
class Done:
    answer: Answer


@dataclass
class ErrorEvent:
    message: str
    code: str = "engine_error"


Event = ImagesRead | StepDone | SourcesFound | Token | Done | ErrorEvent
