"""The planner: a question -> sub-queries with dependencies, searched in waves.

    plan(llm, question, preset) -> Plan(steps=[SubQuery(id, query, depends_on)], source)
    waves(plan)                 -> [[independent steps], [steps that need the first wave], ...]
    resolve(step, answers)      -> the step's query with the earlier answers filled in
    needs_more(llm, question, findings, ...) -> follow-up queries when evidence is missing

Placeholders: a query refers to the answer of an earlier step as ``{s1}`` (the step's id in braces),
e.g. ``s1`` "country where the Eiffel Tower is", ``s2`` "capital of {s1}" (depends on s1). The
prompt teaches this with one example; :func:`resolve` replaces each placeholder with that step's
short answer (or, when the step found nothing, with the step's own query).

Robust with small models: the model writes under a JSON-schema grammar (``complete_json``),
so its output always parses; :func:`validate_plan` then takes whatever came back (also JSON-ish input
from an unconstrained endpoint) and keeps only what makes sense: steps with a query that shares a
word with the question or uses a placeholder (but does more than compare placeholders), unique ids
and queries, known dependencies, no cycles, at most the preset's number of steps, in dependency
order. A model error or nothing usable left gives :func:`fallback_plan`, a plan without a model:
a comparison ("Which is older, X or Y?", "X vs Y") or a question of two clauses joined by "and" is
split, anything else is searched as asked. ``plan`` never raises for model trouble.

The package, one job a module: :mod:`.steps` (the plan's types), :mod:`.model_plan` (the prompt,
the schema and :func:`plan`), :mod:`.validate` (:func:`validate_plan`), :mod:`.fallback` (the plan
without a model), :mod:`.running` (waves and placeholders), :mod:`.more_rounds` (:func:`needs_more`).
"""

from __future__ import annotations

from groundglass.answer.planner.fallback import fallback_plan, part_queries, split_coordinated
from groundglass.answer.planner.model_plan import plan, plan_max_tokens, plan_messages, plan_schema
from groundglass.answer.planner.more_rounds import needs_more
from groundglass.answer.planner.running import resolve, short_answer, waves
from groundglass.answer.planner.steps import PLACEHOLDER, Plan, PlanSource, SubQuery, single_plan
from groundglass.answer.planner.validate import validate_plan

__all__ = [
    "PLACEHOLDER",
    "Plan",
    "PlanSource",
    "SubQuery",
    "fallback_plan",
    "needs_more",
    "part_queries",
    "plan",
    "plan_max_tokens",
    "plan_messages",
    "plan_schema",
    "resolve",
    "short_answer",
    "single_plan",
    "split_coordinated",
    "validate_plan",
    "waves",
]
