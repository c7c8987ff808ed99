"""What a plan is: sub-queries with ids and dependencies, and the placeholders that link them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

PlanSource = Literal["model", "fallback", "single"]
QUERY_MAX_CHARS = 160
ANSWER_MAX_WORDS = 12  # of a partial answer filled into a dependent query
PLACEHOLDER = re.compile(r"\{\{?\s*([sStT]\d{1,2})\s*\}?\}")


@dataclass
class SubQuery:
    id: str  # "s1", "s2", ...
    query: str  # may contain placeholders like {s1}
    depends_on: list[str] = field(default_factory=list)


@dataclass
class Plan:
    steps: list[SubQuery]
    source: PlanSource  # model: the model's plan, validated; fallback: no usable plan from the model;
    # single: no planning call (minimal effort, or one sub-query allowed)
    reason: str = ""  # why the fallback was used (for the trace)
    seconds: float = 0.0  # model time

    @property
    def queries(self) -> list[str]:
        return [s.query for s in self.steps]


def single_plan(question: str) -> Plan:
    return Plan([SubQuery("s1", " ".join(question.split()), [])], "single")


def clean_query(text: str) -> str:
    text = " ".join(text.split()).strip(" \"'")
    return text[:QUERY_MAX_CHARS]
