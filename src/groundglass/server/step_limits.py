"""``max_steps`` (the Responses API's, Perplexity's Agent API's): the most research steps an answer
takes, over its reasoning effort's.

A step here is what the effort presets count (:mod:`groundglass.answer.effort`): a sub-query the
planner writes, and a search round. ``max_steps`` caps both, so ``1`` is one search for the question
as asked, with no planning call and no follow-up round, at any effort; a value above the preset's
changes nothing. The cap travels to the engine as a ``reasoning.models`` rule for the request's
model name, merged with (and never raising) the configured ones, so the engine reads it where it
reads every other effort setting; engines are kept per cap, and the caps are bounded by the
presets' own limits, so only a handful of engines are ever made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from groundglass.answer.effort import EFFORTS, preset_for

if TYPE_CHECKING:
    from groundglass.config import Settings

MAX_STEPS = 100  # Perplexity's bound on the field
STEP_FIELDS = ("max_sub_queries", "max_rounds")


def effective_steps(max_steps: int | None, settings: Settings, model_name: str) -> int | None:
    """``max_steps`` where it cuts something at some effort for ``model_name``, else None."""
    if max_steps is None:
        return None
    most = max(getattr(preset_for(level, model_name, settings), f) for level in EFFORTS for f in STEP_FIELDS)
    return max_steps if max_steps < most else None


def with_max_steps(settings: Settings, model_name: str, max_steps: int) -> Settings:
    """``settings`` whose effort presets for ``model_name`` take at most ``max_steps`` steps."""
    rules: dict[str, Any] = dict(settings.reasoning.models)
    own = rules.get(model_name) or {}
    merged: dict[str, dict[str, Any]] = {}
    for level in EFFORTS:
        changes = own.get(level)
        if hasattr(changes, "model_dump"):  # config.EffortOverride
            changes = changes.model_dump(exclude_none=True)
        preset = preset_for(level, model_name, settings)
        caps = {f: min(getattr(preset, f), max_steps) for f in STEP_FIELDS}
        merged[level] = {**(changes or {}), **caps}
    rules[model_name] = merged
    reasoning = settings.reasoning.model_copy(update={"models": rules})
    return settings.model_copy(update={"reasoning": reasoning})
