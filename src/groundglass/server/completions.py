"""Chat-completion bodies: the non-streaming object, the streamed chunks, and the priced ``usage``.

The body is the engine's Perplexity-shaped dict (:func:`groundglass.answer.response.to_perplexity_json`)
with the API's additions: ``model`` is the API model name asked for, each choice carries ``delta``
beside ``message`` (as Perplexity's own responses do), ``usage`` adds ``search_context_size``,
``citation_tokens``, ``reasoning_tokens`` and ``cost`` with its parts, and ``related_questions``
appears when asked for, as do ``images`` (``return_images``: the images of the pages read).

``citation_tokens`` counts the tokens of the source text given to the model (it is part of
``prompt_tokens``, priced separately only where a plan sets ``citation_per_million``);
``reasoning_tokens`` are what the model wrote besides the answer: rewriting a follow-up, planning,
answering sub-queries, the ``<think>`` trace and related questions (the engine counts them). Related
questions come from the engine: follow-ups the sources can answer, written by the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from groundglass.answer.response import to_perplexity_json

if TYPE_CHECKING:
    from groundglass.answer.types import Answer, Source
    from groundglass.server.answering import Plan
    from groundglass.server.usage import Cost, Pricing


def citation_tokens(answer: Answer, count_tokens: Any | None = None) -> int:
    texts = [s.text for s in answer.sources]
    if not texts:
        return 0
    if count_tokens is not None:
        try:
            return int(sum(count_tokens(t) for t in texts))
        except Exception:
            pass
    return sum(len(t) for t in texts) // 4


def usage_block(
    pricing: Pricing, plan: Plan, answer: Answer, num_search_queries: int, cite_tokens: int
) -> tuple[dict[str, Any], Cost]:
    u = answer.usage
    cost = pricing.chat(
        plan.api_model,
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        citation_tokens=cite_tokens,
        reasoning_tokens=u.reasoning_tokens,
        num_search_queries=num_search_queries,
        search_context_size=plan.context_size,
    )  # type: ignore[arg-type]
    block = {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "num_search_queries": num_search_queries,
        "search_context_size": plan.context_size,
        "citation_tokens": cite_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},  # OpenAI's field
        "cost": cost.as_dict(),
    }
    return block, cost


def completion_body(
    plan: Plan, answer: Answer, usage: dict[str, Any], request_id: str, created: int
) -> dict[str, Any]:
    body = to_perplexity_json(answer, id=request_id, created=created)
    body["model"] = plan.api_model
    for choice in body["choices"]:
        choice["delta"] = dict(choice["message"])
    body["usage"] = usage
    if plan.related_questions:
        body["related_questions"] = answer.related_questions
    body.update(images_extra(plan, answer))
    return body


def images_extra(plan: Plan, answer: Answer) -> dict[str, Any]:
    """``images`` (with ``return_images``: ``{image_url, origin_url, title, width, height}`` each, best
    first, the first ``num_images`` when it is given), and the search report without them (the
    engine's report carries them to here)."""
    out: dict[str, Any] = {}
    report = answer.search_report
    if plan.return_images:
        out["images"] = list((report or {}).get("images", []))[: plan.num_images]
    if report is not None:
        out["search_report"] = {k: v for k, v in report.items() if k != "images"}
    return out


def chunk(
    request_id: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    body: dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    body.update(extra)
    return body


def sources_extra(sources: list[Source]) -> dict[str, Any]:
    return {"citations": [s.url for s in sources], "search_results": [s.search_result() for s in sources]}
