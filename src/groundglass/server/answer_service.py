"""One chat completion, start to end, for any caller: the chat route, the job worker, other routes.

:func:`complete` runs a :class:`~groundglass.server.answering.Plan` through the engine bridge
(:class:`~groundglass.server.answering.Answerer`), prices it and shapes the ``chat.completion`` body
(:mod:`groundglass.server.completions`). It knows nothing of HTTP: a caller that wants the run to stop
when its client leaves sets ``cancel`` (the chat route does, with
:func:`groundglass.server.disconnect.cancel_on_disconnect`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from groundglass.server.completions import citation_tokens, completion_body, usage_block

if TYPE_CHECKING:
    from collections.abc import Callable

    from groundglass.server.answering import Answerer, Plan
    from groundglass.server.metrics import Metrics
    from groundglass.server.usage import Cost, Pricing


class AnswerContext(Protocol):
    """What a completion needs of the server (the server's state provides it)."""

    answerer: Answerer
    pricing: Pricing
    metrics: Metrics


async def complete(
    st: AnswerContext,
    plan: Plan,
    request_id: str,
    *,
    cancel: threading.Event | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], Cost]:
    """Run ``plan`` to its answer: (completion body, usage block, cost). Raises APIError on failure.

    Setting ``cancel`` stops the engine before its next token; ``timings`` receives the time queued
    for an engine slot, the engine's time and its steps."""
    answer, _ = await st.answerer.answer(plan, cancel or threading.Event(), timings)
    if timings is not None:  # the engine's own steps (cumulative seconds), e.g. "first_token_s"
        timings.update({k.removesuffix("_s"): v for k, v in answer.timings.items()})
    count = token_counter(st.answerer, plan)
    searched = answer.usage.num_search_queries  # the queries actually searched (none when search is off)
    usage, cost = usage_block(st.pricing, plan, answer, searched, citation_tokens(answer, count))
    st.metrics.tokens.labels("prompt").inc(answer.usage.prompt_tokens)
    st.metrics.tokens.labels("completion").inc(answer.usage.completion_tokens)
    return completion_body(plan, answer, usage, request_id, int(time.time())), usage, cost


def token_counter(answerer: Answerer, plan: Plan) -> Callable[[str], int] | None:
    """The plan's model's own token counter, or None when the model cannot be had (counted by length)."""
    try:
        return answerer.engine(plan).llm(plan.ask.model).count_tokens  # type: ignore[no-any-return]
    except Exception:
        return None
