"""Asking the model for a plan: the prompt, the JSON schema it writes under, and :func:`plan`.

The grammar makes the model's output always parse; what it says is then cleaned by
:func:`~groundglass.answer.planner.validate.validate_plan`, and a model error or an unusable plan
falls back to :func:`~groundglass.answer.planner.fallback.fallback_plan`, so :func:`plan` never
raises for model trouble.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from groundglass.answer.effort import EffortPreset
from groundglass.answer.llm.base import LLM, ChatMessage, Completion
from groundglass.answer.planner.fallback import fallback_plan
from groundglass.answer.planner.steps import QUERY_MAX_CHARS, Plan, single_plan
from groundglass.answer.planner.validate import validate_plan
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

log = get_logger(__name__)

PLAN_SYSTEM = (
    "Split the question into the searches needed to answer it, at most {n}. Each step has an id (s1, s2, "
    "...), a short search query, and depends_on: the ids of the steps whose answers it needs. Write {{s1}} "
    "in a query where the answer of step s1 goes. Steps that need no other answer have depends_on []. "
    "Search only for facts: comparing or computing is done after the searches. Do not assume any fact "
    "the question does not state: search for it. If one search is enough, write one step. Reply in JSON.\n"
    'Example: "How old was the director of Jaws when it was released?" -> {{"steps": ['
    '{{"id": "s1", "query": "director of Jaws", "depends_on": []}}, '
    '{{"id": "s2", "query": "Jaws release year", "depends_on": []}}, '
    '{{"id": "s3", "query": "birth date of {{s1}}", "depends_on": ["s1"]}}]}}\n'
    'Example: "Which is longer, the Nile or the Amazon?" -> {{"steps": ['
    '{{"id": "s1", "query": "length of the Nile", "depends_on": []}}, '
    '{{"id": "s2", "query": "length of the Amazon", "depends_on": []}}]}}'
)


def step_ids(n: int) -> list[str]:
    return [f"s{i}" for i in range(1, n + 1)]


def plan_schema(max_steps: int) -> dict[str, Any]:
    """JSON schema of a plan of at most ``max_steps`` steps (ids s1..sN)."""
    ids = step_ids(max_steps)
    return {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"enum": ids},
                        "query": {"type": "string", "minLength": 3, "maxLength": QUERY_MAX_CHARS},
                        "depends_on": {"type": "array", "maxItems": max_steps, "items": {"enum": ids}},
                    },
                    "required": ["id", "query", "depends_on"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def plan_max_tokens(max_steps: int) -> int:
    """Enough tokens for ``max_steps`` steps of the longest allowed query (~4 characters a token)."""
    return 24 + max_steps * (QUERY_MAX_CHARS // 3 + 24)


def plan_messages(
    question: str, max_steps: int, history: Sequence[ChatMessage] | None = None
) -> list[ChatMessage]:
    user = f"Question: {question.strip()}"
    earlier = [m.content for m in (history or []) if m.role == "user"][-2:]
    if earlier:
        context = " / ".join(" ".join(t.split())[:200] for t in earlier)
        user = f"Earlier questions (context only): {context}\n{user}"
    return [ChatMessage("system", PLAN_SYSTEM.format(n=max_steps)), ChatMessage("user", user)]


def plan(
    llm: LLM,
    question: str,
    preset: EffortPreset,
    *,
    history: Sequence[ChatMessage] | None = None,
    completion: Completion | None = None,
) -> Plan:
    """The sub-queries for ``question`` under ``preset`` (``question`` should be standalone: rewrite a
    follow-up first). No model call when the preset allows one sub-query. Never raises for model
    trouble: a failed or unusable plan becomes :func:`fallback_plan`."""
    question = " ".join(question.split())
    if not preset.plans:
        return single_plan(question)
    n = preset.max_sub_queries
    started = time.perf_counter()
    try:
        raw = llm.complete_json(
            plan_messages(question, n, history),
            plan_schema(n),
            max_tokens=plan_max_tokens(n),
            temperature=0.0,
            completion=completion,
        )
    except GroundglassError as exc:
        result = fallback_plan(question, n, reason=f"the model failed: {exc.message}")
    else:
        validated = validate_plan(raw, question, n)
        result = (
            validated
            if validated is not None
            else fallback_plan(question, n, reason="the model's plan had no usable step")
        )
    result.seconds = round(time.perf_counter() - started, 3)
    if result.source == "fallback":
        log.info("plan_fallback", reason=result.reason)
    return result
