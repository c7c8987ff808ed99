"""Research: the searches between a question and its sources when the reasoning effort asks for more
than one.

    plan -> waves of sub-queries (a wave's queries are searched in parallel; a step that needs an
    earlier answer gets it filled in) -> a short partial answer per step (when a later step, a later
    round or the trace needs it) -> evidence missing? another round, up to the effort's budget
    -> the sources of all steps, interleaved so that each step contributes its best ones first.

With a plan of two or more steps, the question as asked is searched beside the first wave (step
``q``, no partial answer): the sub-queries are the model's paraphrases, and in the FanOutQA evaluation
they lost pages that the question's own words find.

``research(...)`` is a generator: it yields one :class:`Step` as each finishes (the engine turns
them into the visible ``<think>`` trace as they come) and returns the :class:`Research` at the end.
It never raises for model trouble: the planner and the follow-up check fall back, and a partial
answer that fails is left empty. Search failures are the searcher's to report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import TypedDict

from groundglass.answer import cite, planner, prompt, querytext
from groundglass.answer.effort import EffortPreset
from groundglass.answer.llm.base import LLM, Completion
from groundglass.answer.types import ChatMessage, Source
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

log = get_logger(__name__)

PARTIAL_MAX_TOKENS = 48
PARTIAL_SOURCES = 3  # a partial answer reads its step's best few sources
MORE_QUERIES_PER_ROUND = 2

# queries -> one ranked candidate list per query (the engine searches the index or the web)
Searcher = Callable[[list[str]], list[list[Source]]]
# (query, candidates, k) -> the relevant best k for that query
Ranker = Callable[[str, list[Source], int], list[Source]]


class SourceRef(TypedDict):
    title: str
    url: str


class StepRecord(TypedDict):
    """A :class:`Step` in its JSON form: the stream's ``StepDone`` event, the API's ``reasoning_step``."""

    id: str
    query: str
    round: int
    sources: list[SourceRef]
    partial_answer: str
    seconds: float
    note: str


@dataclass
class Step:
    """One search of the research, as the trace and the JSON show it."""

    id: str
    query: str  # as searched (placeholders filled in)
    round: int  # 1 = the plan, 2+ = follow-up rounds
    sources: list[Source] = field(default_factory=list)
    partial_answer: str = ""
    seconds: float = 0.0
    note: str = ""

    def as_dict(self) -> StepRecord:
        return {
            "id": self.id,
            "query": self.query,
            "round": self.round,
            "sources": [{"title": s.title, "url": s.url} for s in self.sources],
            "partial_answer": self.partial_answer,
            "seconds": self.seconds,
            "note": self.note,
        }

    def trace_line(self) -> str:
        titles = "; ".join(dict.fromkeys(s.title for s in self.sources)) or "nothing relevant"
        line = f'{self.id}: searched "{self.query}" -> {len(self.sources)} source(s): {titles}.'
        if self.partial_answer:
            line += f" Found: {self.partial_answer}"
        return line


@dataclass
class Research:
    steps: list[Step]
    plan_source: str  # model | fallback | single
    plan_note: str  # why a fallback was used, or ""
    sources: list[Source]  # all steps' sources, interleaved, each once
    reasoning_tokens: int = 0  # tokens the model wrote while planning and answering steps

    @property
    def queries(self) -> list[str]:
        return [s.query for s in self.steps]


def research(
    llm: LLM,
    question: str,
    preset: EffortPreset,
    search: Searcher,
    rank: Ranker,
    *,
    history: Sequence[ChatMessage] = (),
) -> Generator[Step, None, Research]:
    """Plan, search in waves and rounds, and collect the sources for ``question`` (a standalone query)."""
    counted: list[Completion] = []

    def completion() -> Completion:
        c = Completion()
        counted.append(c)
        return c

    the_plan = planner.plan(llm, question, preset, history=list(history) or None, completion=completion())
    run = _Run(llm, question, preset, search, rank, completion)
    yield from run.waves(the_plan)
    yield from run.rounds()
    return Research(
        steps=run.steps,
        plan_source=the_plan.source,
        plan_note=the_plan.reason,
        sources=interleave([s.sources for s in run.steps]),
        reasoning_tokens=sum(c.completion_tokens for c in counted),
    )


@dataclass
class _Run:
    """One research: what it searches with, and the steps so far."""

    llm: LLM
    question: str
    preset: EffortPreset
    search: Searcher
    rank: Ranker
    completion: Callable[[], Completion]  # a fresh Completion whose tokens the research counts
    steps: list[Step] = field(default_factory=list)

    def waves(self, the_plan: planner.Plan) -> Generator[Step, None, None]:
        """The plan's steps, wave by wave, each with a partial answer when a later step, a later round
        or the trace needs it."""
        question, preset, rank = self.question, self.preset, self.rank
        dependents = {d for s in the_plan.steps for d in s.depends_on}
        need_all_answers = preset.max_rounds > 1 or preset.think
        answers: dict[str, str] = {}
        # The question as asked is searched beside the first wave: a plan's sub-queries paraphrase, and a
        # fan-out question's own words often find its main page best.
        as_asked = len(the_plan.steps) > 1 and querytext.normalize(question) not in {
            querytext.normalize(s.query) for s in the_plan.steps
        }
        for number, wave in enumerate(planner.waves(the_plan)):
            queries = [planner.resolve(s, answers, the_plan) for s in wave]
            extra = [question] if number == 0 and as_asked else []
            started = time.perf_counter()
            found = self.search(queries + extra)
            per_query = (time.perf_counter() - started) / max(1, len(queries) + len(extra))
            if extra:
                whole = Step(
                    "q",
                    question,
                    1,
                    rank(question, found.pop(), preset.sources_per_query),
                    seconds=round(per_query, 3),
                    note="the question as asked",
                )
                self.steps.append(whole)
                yield whole
            for sub, query, candidates in zip(wave, queries, found, strict=True):
                t = time.perf_counter()
                step = Step(sub.id, query, 1, rank(query, candidates, preset.sources_per_query))
                if step.sources and (need_all_answers or sub.id in dependents):
                    step.partial_answer = _partial_answer(self.llm, query, step.sources, self.completion())
                answers[sub.id] = step.partial_answer
                step.seconds = round(per_query + time.perf_counter() - t, 3)
                self.steps.append(step)
                yield step

    def rounds(self) -> Generator[Step, None, None]:
        """Follow-up rounds while the findings miss evidence, up to the effort's number of rounds."""
        steps = self.steps
        for round_no in range(2, self.preset.max_rounds + 1):
            findings = {s.query: s.partial_answer for s in steps if s.id != "q"}
            more = planner.needs_more(
                self.llm,
                self.question,
                findings,
                max_queries=MORE_QUERIES_PER_ROUND,
                asked=[s.query for s in steps],
                completion=self.completion(),
            )
            if not more:
                break
            started = time.perf_counter()
            found = self.search(more)
            per_query = (time.perf_counter() - started) / len(more)
            for query, candidates in zip(more, found, strict=True):
                t = time.perf_counter()
                step = Step(
                    f"r{round_no}.{len(steps) + 1}",
                    query,
                    round_no,
                    self.rank(query, candidates, self.preset.sources_per_query),
                    note="evidence was missing",
                )
                if step.sources:
                    step.partial_answer = _partial_answer(self.llm, query, step.sources, self.completion())
                step.seconds = round(per_query + time.perf_counter() - t, 3)
                steps.append(step)
                yield step


def interleave(lists: Sequence[list[Source]]) -> list[Source]:
    """Round robin over the steps' ranked sources (best of each step first), each chunk once."""
    out: list[Source] = []
    seen: set[tuple[str, str]] = set()
    for depth in range(max((len(x) for x in lists), default=0)):
        for sources in lists:
            if depth < len(sources):
                s = sources[depth]
                key = (s.url, s.chunk_id or s.text[:200])
                if key not in seen:
                    seen.add(key)
                    out.append(s)
    return out


def _partial_answer(llm: LLM, query: str, sources: list[Source], completion: Completion) -> str:
    """One short sentence answering ``query`` from its best sources (uses the answer prompt, so the
    cached system-message prefix is shared); "" when the model fails or declines."""
    messages = prompt.build_messages(query, sources[:PARTIAL_SOURCES], style="partial")
    try:
        with closing(
            llm.stream(messages, max_tokens=PARTIAL_MAX_TOKENS, temperature=0.0, completion=completion)
        ) as tokens:
            text = "".join(tokens)
    except GroundglassError as exc:
        log.info("partial_answer_failed", query=query, error=exc.message)
        return ""
    text = " ".join(cite.strip_markers(text).split())
    return "" if not text or prompt.DECLINE.rstrip(".") in text else planner.short_answer(text, 30)
