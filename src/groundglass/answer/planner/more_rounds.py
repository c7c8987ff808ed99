"""Another round of searches: the facts the findings still miss, as queries (:func:`needs_more`).

Never raises for model trouble: a failed call means no more rounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from groundglass.answer import querytext
from groundglass.answer.llm.base import LLM, ChatMessage, Completion
from groundglass.answer.planner.running import short_answer
from groundglass.answer.planner.steps import QUERY_MAX_CHARS, clean_query
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

log = get_logger(__name__)

MORE_SYSTEM = (
    "You check research notes. List search queries for the facts that the question needs and the "
    "findings do not give, at most {n}. If the findings already answer the question, reply with an "
    "empty list. Reply in JSON."
)


def more_schema(max_queries: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "missing": {
                "type": "array",
                "maxItems": max_queries,
                "items": {"type": "string", "minLength": 3, "maxLength": QUERY_MAX_CHARS},
            },
        },
        "required": ["missing"],
        "additionalProperties": False,
    }


def more_messages(question: str, findings: Mapping[str, str], max_queries: int) -> list[ChatMessage]:
    lines = []
    for query, answer in findings.items():
        found = short_answer(answer, 40) if answer and answer.strip() else "(nothing found)"
        lines.append(f"- {' '.join(query.split())}: {found}")
    user = (
        "Findings:\n"
        + "\n".join(lines or ["- (none)"])
        + f"\n\nQuestion: {' '.join(question.split())}\nWhich facts are still missing?"
    )
    return [ChatMessage("system", MORE_SYSTEM.format(n=max_queries)), ChatMessage("user", user)]


def needs_more(
    llm: LLM,
    question: str,
    findings: Mapping[str, str],
    *,
    max_queries: int = 2,
    asked: Iterable[str] = (),
    completion: Completion | None = None,
) -> list[str]:
    """New search queries for facts the findings (query -> partial answer, "" when nothing was found)
    still miss; an empty list means the evidence is enough, or the model failed (never raises for
    model trouble). Queries already ``asked`` (or in ``findings``), repeats and queries unrelated to
    the question and the findings are dropped."""
    if max_queries < 1:
        return []
    try:
        raw = llm.complete_json(
            more_messages(question, findings, max_queries),
            more_schema(max_queries),
            max_tokens=24 + max_queries * (QUERY_MAX_CHARS // 3 + 8),
            temperature=0.0,
            completion=completion,
        )
    except GroundglassError as exc:
        log.info("needs_more_failed", error=exc.message)
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("missing"), list):
        return []
    seen = {querytext.normalize(q) for q in [*asked, *findings]}
    context = " ".join([question, *findings, *findings.values()])
    out: list[str] = []
    for q in raw["missing"]:
        if not isinstance(q, str):
            continue
        q = clean_query(q)
        key = querytext.normalize(q)
        if len(q) < 3 or key in seen or not querytext.content_stems(q) & querytext.content_stems(context):
            continue
        seen.add(key)
        out.append(q)
    return out[:max_queries]
