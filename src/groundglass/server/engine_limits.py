"""What a Responses request bounds of the engine's work, over its model preset and reasoning effort:
``max_steps`` (the request's), ``max_tokens`` and ``max_tokens_per_page`` (its ``web_search`` tool's,
Perplexity's Agent API fields).

- ``max_steps``: a step is what the effort presets count (:mod:`groundglass.answer.effort`), a
  sub-query the planner writes and a search round; both are capped, so ``1`` is one search for the
  question as asked, with no planning call and no follow-up round, at any effort. A value above every
  preset's changes nothing and is dropped (:func:`effective_steps`).
- ``max_tokens``: the token budget of all the sources the answer reads, at every search context size
  and effort (it replaces theirs; the model's context window still bounds it).
- ``max_tokens_per_page``: how much of one page (or document) the answer reads: at most
  ``max_tokens_per_page // retrieval.chunk_tokens`` passages of it, passages being the unit a page is
  read in.

They travel to the engine as its settings (``reasoning.models`` rules for the request's model name,
merged with and never raising the configured ones; ``search.context_sizes``; ``retrieval``), so the
engine reads them where it reads every other such setting. Engines are kept per set of limits; the
server keeps a few of those and drops the oldest (:data:`MAX_LIMITED_ENGINES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from groundglass.answer.effort import EFFORTS, preset_for

if TYPE_CHECKING:
    from groundglass.config import Settings

STEP_FIELDS = ("max_sub_queries", "max_rounds")
MAX_LIMITED_ENGINES = 8  # engines made for limited requests, kept at once (the oldest is dropped)


@dataclass(frozen=True)
class EngineLimits:
    max_steps: int | None = None
    max_tokens: int | None = None
    max_tokens_per_page: int | None = None

    def apply(self, settings: Settings, model_name: str) -> Settings:
        """``settings`` with these limits, for requests to the API model ``model_name``."""
        out = settings
        if self.max_steps is not None or self.max_tokens is not None:
            out = _with_effort_rules(out, model_name, self)
        if self.max_tokens is not None:
            sizes = {
                k: v.model_copy(update={"context_tokens": self.max_tokens})
                for k, v in out.search.context_sizes.items()
            }
            out = out.model_copy(
                update={
                    "search": out.search.model_copy(update={"context_sizes": sizes}),
                    "retrieval": out.retrieval.model_copy(update={"context_tokens": self.max_tokens}),
                }
            )
        if self.max_tokens_per_page is not None:
            passages = max(1, self.max_tokens_per_page // out.retrieval.chunk_tokens)
            out = out.model_copy(
                update={"retrieval": out.retrieval.model_copy(update={"max_per_source": passages})}
            )
        return out


def effective_steps(max_steps: int | None, settings: Settings, model_name: str) -> int | None:
    """``max_steps`` where it cuts something at some effort for ``model_name``, else None."""
    if max_steps is None:
        return None
    most = max(getattr(preset_for(level, model_name, settings), f) for level in EFFORTS for f in STEP_FIELDS)
    return max_steps if max_steps < most else None


def _with_effort_rules(settings: Settings, model_name: str, limits: EngineLimits) -> Settings:
    """``settings`` whose effort presets for ``model_name`` take at most ``max_steps`` steps and give
    the sources ``max_tokens``."""
    rules: dict[str, Any] = dict(settings.reasoning.models)
    own = rules.get(model_name) or {}
    merged: dict[str, dict[str, Any]] = {}
    for level in EFFORTS:
        changes = own.get(level)
        if hasattr(changes, "model_dump"):  # config.EffortOverride
            changes = changes.model_dump(exclude_none=True)
        preset = preset_for(level, model_name, settings)
        caps: dict[str, Any] = {}
        if limits.max_steps is not None:
            caps = {f: min(getattr(preset, f), limits.max_steps) for f in STEP_FIELDS}
        if limits.max_tokens is not None:
            caps["context_tokens"] = limits.max_tokens
        merged[level] = {**(changes or {}), **caps}
    rules[model_name] = merged
    reasoning = settings.reasoning.model_copy(update={"models": rules})
    return settings.model_copy(update={"reasoning": reasoning})
