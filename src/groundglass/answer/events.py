"""Typed events the engine yields while it answers, in order:

``ImagesRead`` (once, only for questions with images: the visual facts) -> ``StepDone`` (one per
search of a multi-step answer; with a reasoning trace, the ``<think>`` tokens come with them) ->
``SourcesFound`` (once, as soon as retrieval is done) -> ``Token`` (many) -> ``Done`` (once, with the
finished :class:`~groundglass.answer.types.Answer`: citations checked, attribution, usage).
An ``ErrorEvent`` replaces the rest of the stream when something fails mid-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from groundglass.answer.types import Answer, Source


@dataclass
class ImagesRead:
    facts: list[dict[str, Any]]  # per image: text, labels with scores, caption, metadata


@dataclass
class SourcesFound:
    sources: list[Source]
    queries: list[str]


@dataclass
class StepDone:
    step: dict[str, Any]  # one search of a multi-step answer: id, query, sources, partial answer, time


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
