"""Typed events the engine yields while it answers, in order:

``SourcesFound`` (once, as soon as retrieval is done) -> ``Token`` (many) -> ``Done`` (once, with the
finished :class:`~groundglass.answer.types.Answer`: citations checked, attribution, usage).
An ``ErrorEvent`` replaces the rest of the stream when something fails mid-way.
"""

from __future__ import annotations

from dataclasses import dataclass

from groundglass.answer.types import Answer, Source


@dataclass
class SourcesFound:
    sources: list[Source]
    queries: list[str]


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


Event = SourcesFound | Token | Done | ErrorEvent
