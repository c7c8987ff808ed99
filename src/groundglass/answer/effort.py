"""Reasoning effort: what ``minimal``, ``low``, ``medium`` and ``high`` buy (the API's ``reasoning_effort``).

One :class:`EffortPreset` per level says how much work a question gets: how many sub-queries the
planner may write, how many search rounds run, how many sources each sub-query keeps, the token budget
for sources in the answer prompt, the answer's length cap and style, whether the answer starts with a
``<think>`` trace and whether related questions are written by default.

The built-in levels are sized for the default 1.5B model on a 2-core CPU, where each model call costs
seconds (``bench/bench_llm.py`` measures its prefill and generation speed):

========  ===========  ======  =======  =======  ======  =====  =======  =======
level     sub-queries  rounds  sources  context  answer  think  related  style
========  ===========  ======  =======  =======  ======  =====  =======  =======
minimal   1            1       6        1200     512     no     no       brief
low       2            1       5        1200     512     no     no       brief
medium    3            2       4        1800     768     yes    yes      detailed
high      5            3       4        3000     1536    yes    yes      report
========  ===========  ======  =======  =======  ======  =====  =======  =======

``minimal`` makes no planning call at all (one search for the question as asked, today's pipeline).
Model names change the presets: built-in rules below (the ``sonar`` names behave as Perplexity's:
only ``sonar-reasoning*`` and ``sonar-deep-research`` show a ``<think>`` trace), then
``settings.reasoning.models`` (name or glob -> level -> fields), applied from the least to the most
specific pattern. :meth:`EffortPreset.fit` shrinks a preset to a model's context window.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.config import Settings

EFFORTS = ("minimal", "low", "medium", "high")
DEFAULT_EFFORT = "minimal"
AnswerStyle = Literal["brief", "detailed", "report"]

# Tokens the answer prompt needs besides the sources and the answer: system prompt, question twice,
# reminder, chat-template framing and a short conversation history (see prompt.fixed_prompt_tokens).
PROMPT_RESERVE_TOKENS = 512
MIN_CONTEXT_TOKENS = 400  # below this a preset's sources are too few to answer from
MIN_ANSWER_TOKENS = 128


@dataclass(frozen=True)
class EffortPreset:
    """How much work one question gets at one reasoning effort."""

    name: str  # minimal | low | medium | high
    max_sub_queries: int  # steps the planner may write (1 = no planning call)
    max_rounds: int  # search rounds, the first included (2+ = follow-up searches when evidence is missing)
    sources_per_query: int  # sources kept per sub-query
    context_tokens: int  # token budget for all sources in the answer prompt
    answer_max_tokens: int  # cap on the answer's length (a request's max_tokens still wins when lower)
    think: bool  # start the answer with a <think>...</think> trace of the steps
    related_questions: bool  # write related questions unless the request says otherwise
    answer_style: AnswerStyle  # brief: 1-3 sentences; detailed: a paragraph or two; report: sections

    @property
    def plans(self) -> bool:
        """Whether a planning call runs (more than one sub-query allowed)."""
        return self.max_sub_queries > 1

    def fit(self, context_length: int, reserve_tokens: int = PROMPT_RESERVE_TOKENS) -> EffortPreset:
        """This preset with ``context_tokens`` (then ``answer_max_tokens``) cut so that sources + answer +
        ``reserve_tokens`` fit ``context_length`` tokens; never below the floors."""
        room = context_length - reserve_tokens
        context = self.context_tokens
        answer = self.answer_max_tokens
        if context + answer > room:
            context = max(MIN_CONTEXT_TOKENS, room - answer)
        if context + answer > room:
            answer = max(MIN_ANSWER_TOKENS, room - context)
        if (context, answer) == (self.context_tokens, self.answer_max_tokens):
            return self
        return replace(self, context_tokens=context, answer_max_tokens=answer)


PRESETS: dict[str, EffortPreset] = {
    "minimal": EffortPreset(
        "minimal",
        max_sub_queries=1,
        max_rounds=1,
        sources_per_query=6,
        context_tokens=1200,
        answer_max_tokens=512,
        think=False,
        related_questions=False,
        answer_style="brief",
    ),
    "low": EffortPreset(
        "low",
        max_sub_queries=2,
        max_rounds=1,
        sources_per_query=5,
        context_tokens=1200,
        answer_max_tokens=512,
        think=False,
        related_questions=False,
        answer_style="brief",
    ),
    "medium": EffortPreset(
        "medium",
        max_sub_queries=3,
        max_rounds=2,
        sources_per_query=4,
        context_tokens=1800,
        answer_max_tokens=768,
        think=True,
        related_questions=True,
        answer_style="detailed",
    ),
    "high": EffortPreset(
        "high",
        max_sub_queries=5,
        max_rounds=3,
        sources_per_query=4,
        context_tokens=3000,
        answer_max_tokens=1536,
        think=True,
        related_questions=True,
        answer_style="report",
    ),
}

_ALL = {level: {"think": True} for level in EFFORTS}
_NONE = {level: {"think": False} for level in EFFORTS}
# Built-in rules per model name (glob), applied before settings.reasoning.models.
BUILTIN_MODEL_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "sonar": _NONE,
    "sonar-pro": _NONE,
    "sonar-reasoning*": _ALL,
    "sonar-deep-research": {level: {"think": True, "related_questions": True} for level in EFFORTS},
}


def check_effort(effort: str, *, param: str = "reasoning_effort") -> str:
    """``effort`` normalised (lower case, trimmed), or a :class:`GroundglassError` listing the levels."""
    name = effort.strip().lower()
    if name not in PRESETS:
        raise GroundglassError(
            f"unknown reasoning effort {effort!r}", f"use one of {', '.join(EFFORTS)}", param=param
        )
    return name


def _specificity(pattern: str) -> tuple[int, int]:
    """Sort key: globs before exact names, fewer literal characters first."""
    is_exact = not any(ch in pattern for ch in "*?[")
    literal = sum(ch not in "*?[]" for ch in pattern)
    return (int(is_exact), literal)


def _apply(
    preset: EffortPreset, rules: Mapping[str, Mapping[str, Any]], model_name: str, origin: str
) -> EffortPreset:
    valid = {f.name for f in fields(EffortPreset)} - {"name"}
    for pattern in sorted(rules, key=_specificity):
        if not fnmatch.fnmatchcase(model_name, pattern):
            continue
        changes = rules[pattern].get(preset.name)
        if changes is None:
            continue
        if hasattr(changes, "model_dump"):  # config.EffortOverride
            changes = changes.model_dump(exclude_none=True)
        unknown = set(changes) - valid
        if unknown:
            raise GroundglassError(
                f"{origin}[{pattern!r}][{preset.name!r}] has unknown fields {', '.join(sorted(unknown))}",
                f"use {', '.join(sorted(valid))}",
                param="reasoning_effort",
            )
        preset = replace(preset, **{k: v for k, v in changes.items() if v is not None})
    return preset


def default_effort(model_name: str, settings: Settings | None = None) -> str:
    """The level for a request that names none: the server preset's for an API model name, else
    ``settings.reasoning.default_effort`` (``low`` without settings)."""
    if settings is None:
        return DEFAULT_EFFORT
    preset = settings.server.models.get(model_name)
    if preset is not None:
        return preset.reasoning_effort
    return settings.reasoning.default_effort


def preset_for(effort: str | None, model_name: str, settings: Settings | None = None) -> EffortPreset:
    """The preset for ``effort`` (None: :func:`default_effort`) with the rules for ``model_name`` applied.

    Raises :class:`GroundglassError` (param ``reasoning_effort``) for an unknown level."""
    name = check_effort(effort) if effort is not None else default_effort(model_name, settings)
    preset = _apply(PRESETS[name], BUILTIN_MODEL_OVERRIDES, model_name, "built-in rules")
    if settings is not None and settings.reasoning.models:
        preset = _apply(preset, settings.reasoning.models, model_name, "reasoning.models")
    return preset
