"""An :class:`~groundglass.answer.types.Answer` in OpenAI's Responses shape: the response object, its
output items and its usage.

``output`` holds the engine's ``<think>`` trace as a ``reasoning`` item (its summary text) when the
model writes one (``sonar-reasoning*``, ``sonar-deep-research``), one ``web_search_call`` item per
search that ran (its query, and the sources it found when that is known: the steps of a multi-step
answer say it, and a single search found all of them), then the answer's ``message`` item. Its one
``output_text`` part is the answer as the chat API returns it, ``[n]`` markers included, and carries
one ``url_citation`` annotation per marker of each sentence: ``start_index``/``end_index`` delimit
that sentence in the text (markers included, Python string indices), ``url``/``title`` are the cited
source's. The groundglass extras ride along at the top level: ``search_results``, ``citations``,
``attribution`` and ``declined``; and ``reasoning`` adds to OpenAI's ``effort`` what the engine did
(the chat API's ``reasoning``: a follow-up's rewritten query, reused sources, the plan's steps).

``usage`` has OpenAI's fields (``input_tokens``, ``output_tokens``, ``total_tokens`` and their
details), Perplexity's ``cost`` (the chat API's parts, and the Agent API's ``input_cost``,
``output_cost`` and ``tool_calls_cost`` that group them, in USD) and ``tool_calls_details``, plus
``num_search_queries``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from groundglass.answer import cite
from groundglass.answer.response import attribution

if TYPE_CHECKING:
    from groundglass.answer.types import Answer
    from groundglass.server.responses_schemas import ResponsesRequest


def item_id(prefix: str, response_id: str, n: int) -> str:
    """A stable id for the n-th item of a response (the stream and the final object agree on it)."""
    digest = hashlib.sha256(f"{response_id}:{prefix}:{n}".encode()).hexdigest()[:24]
    return f"{prefix}_{digest}"


THINK_OPEN, THINK_CLOSE = "<think>\n", "</think>\n\n"  # the engine's trace, each streamed as one piece


def split_trace(content: str) -> tuple[str | None, str]:
    """(the ``<think>`` trace's text or None, the answer after it)."""
    if content.startswith(THINK_OPEN) and THINK_CLOSE in content:
        trace, _, rest = content[len(THINK_OPEN) :].partition(THINK_CLOSE)
        return trace, rest
    return None, content


def reasoning_item(id: str, text: str | None, status: str = "completed") -> dict[str, Any]:
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    return {"id": id, "type": "reasoning", "summary": summary, "status": status}


def annotations(answer: Answer, text: str | None = None) -> list[dict[str, Any]]:
    """``url_citation`` annotations of ``text`` (the answer's content by default): for each sentence,
    one per source it cites, spanning the sentence."""
    text = answer.content if text is None else text
    out: list[dict[str, Any]] = []
    cursor = 0
    for sentence in cite.split_sentences(text):
        start = text.find(sentence, cursor)
        if start < 0:  # the splitter normalised the sentence: fall back to its markers alone
            continue
        end = start + len(sentence)
        cursor = end
        for n in dict.fromkeys(cite.cited_numbers(sentence)):
            if 1 <= n <= len(answer.sources):
                source = answer.sources[n - 1]
                out.append(
                    {
                        "type": "url_citation",
                        "start_index": start,
                        "end_index": end,
                        "url": source.url,
                        "title": source.title,
                    }
                )
    return out


def search_items(
    response_id: str, answer: Answer, steps: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One completed ``web_search_call`` per search: the steps' own when there were steps, else one per
    query searched (with every source when there was one query)."""
    if steps is None:
        steps = (answer.reasoning or {}).get("steps") or []
    searches: list[tuple[str, list[str] | None]] = []
    if steps:
        searches = [(s["query"], [x["url"] for x in s.get("sources", [])]) for s in steps]
    elif answer.usage.num_search_queries:
        queries = answer.queries or []
        whole = [s.url for s in answer.sources] if len(queries) == 1 else None
        searches = [(q, whole) for q in queries]
    return [search_item(item_id("ws", response_id, i), q, urls) for i, (q, urls) in enumerate(searches)]


def search_item(id: str, query: str, urls: list[str] | None, status: str = "completed") -> dict[str, Any]:
    action: dict[str, Any] = {"type": "search", "query": query, "queries": [query]}
    if urls is not None:
        action["sources"] = [{"type": "url", "url": u} for u in urls]
    return {"id": id, "type": "web_search_call", "status": status, "action": action}


def text_part(text: str, notes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}


def message_item(id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": id, "type": "message", "role": "assistant", "status": status, "content": parts}


def usage(chat_usage: dict[str, Any]) -> dict[str, Any]:
    """The chat API's priced usage block in the Responses shape."""
    return {
        "input_tokens": chat_usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": chat_usage["prompt_tokens_details"]["cached_tokens"]},
        "output_tokens": chat_usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": chat_usage["reasoning_tokens"]},
        "total_tokens": chat_usage["total_tokens"],
        "num_search_queries": chat_usage["num_search_queries"],
        "search_context_size": chat_usage["search_context_size"],
        "citation_tokens": chat_usage["citation_tokens"],
        "cost": cost(chat_usage["cost"]),
        "tool_calls_details": {"web_search": {"invocation": chat_usage["num_search_queries"]}},
    }


def cost(parts: dict[str, float]) -> dict[str, Any]:
    """The chat API's cost parts, plus Perplexity's Agent API grouping of them: input (prompt and source
    tokens), output (answer and reasoning tokens) and tool calls (searches and the request fee)."""
    return {
        **parts,
        "input_cost": round(parts["input_tokens_cost"] + parts["citation_tokens_cost"], 6),
        "output_cost": round(parts["output_tokens_cost"] + parts["reasoning_tokens_cost"], 6),
        "tool_calls_cost": round(parts["search_queries_cost"] + parts["request_cost"], 6),
        "currency": "USD",
    }


def skeleton(
    response_id: str, body: ResponsesRequest, model: str, created_at: float, status: str
) -> dict[str, Any]:
    """The response object before any output: what ``response.created`` carries."""
    tools = [t.model_dump(exclude_none=True) for t in body.tools] if body.tools is not None else []
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(created_at),
        "status": status,
        "model": model,
        "preset": body.preset,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": body.effort(), "summary": None},
        "temperature": body.temperature,
        "top_p": body.top_p,
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "store": body.store,
        "metadata": body.metadata or {},
        "text": {"format": _text_format(body)},
        "truncation": "disabled",
        "error": None,
        "incomplete_details": None,
        "output": [],
        "usage": None,
    }


def _text_format(body: ResponsesRequest) -> dict[str, Any]:
    pattern = body.regex()
    if pattern is not None:
        return {"type": "regex", "regex": pattern}
    structured = body.json_schema()
    if structured is None:
        return {"type": "text"}
    name, schema, strict = structured
    return {"type": "json_schema", "name": name or "response", "schema": schema, "strict": bool(strict)}


def finished(
    base: dict[str, Any],
    answer: Answer,
    chat_usage: dict[str, Any],
    completed_at: float,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole response object for a finished answer."""
    rid = base["id"]
    trace, text = split_trace(answer.content)
    message = message_item(
        item_id("msg", rid, 0),
        [text_part(text, annotations(answer, text))],
        "incomplete" if answer.finish_reason == "length" else "completed",
    )
    thought = [reasoning_item(item_id("rs", rid, 0), trace)] if trace is not None else []
    out = dict(base)
    out["output"] = [*thought, *search_items(rid, answer, steps), message]
    out["usage"] = usage(chat_usage)
    out["completed_at"] = int(completed_at)
    if answer.finish_reason == "length":
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        out["status"] = "completed"
    if answer.reasoning is not None:  # the engine's steps: the rewritten follow-up, reused sources, plan
        out["reasoning"] = {**base["reasoning"], **answer.reasoning}
    out["citations"] = [s.url for s in answer.sources]
    out["search_results"] = [s.search_result() for s in answer.sources]
    out["attribution"] = attribution(answer)
    out["declined"] = answer.declined
    return out
