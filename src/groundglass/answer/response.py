"""An :class:`~groundglass.answer.types.Answer` as a Perplexity-shaped chat completion (a plain dict).

The CLI's ``ask --json`` prints it and the HTTP API returns it. Marker ``[n]`` in the content refers
to ``search_results[n-1]`` and ``citations[n-1]``. groundglass fields ride along: ``attribution``
(per-sentence support against the cited sources) and ``declined`` always; ``visual_facts`` (what was
read in the images: text, labels with scores, caption, metadata) for image questions, and
``search_report`` (providers used and failed, pages read and not, per query) for web answers,
``reasoning`` (effort, rewritten query, reused sources, plan and steps) when there was more than one
search or a follow-up, and Perplexity's ``related_questions`` when asked for.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from groundglass.answer.types import Answer


def new_id() -> str:
    return f"gg-{uuid.uuid4().hex}"


def attribution(answer: Answer) -> list[dict[str, Any]]:
    """Per sentence: its text, the markers it is measured against, its support score and verdict."""
    return [
        {
            "sentence": a.text,
            "citations": a.citations,
            "support": a.support,
            "supported": a.supported,
            "unsupported_values": a.unsupported_values,
            "restates_question": a.restates_question,
        }
        for a in answer.attribution
    ]


def to_perplexity_json(answer: Answer, id: str | None = None, created: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id or new_id(),
        "model": answer.model,
        "created": int(time.time()) if created is None else created,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.content},
                "finish_reason": answer.finish_reason,
            }
        ],
        "citations": [s.url for s in answer.sources],
        "search_results": [s.search_result() for s in answer.sources],
        "usage": answer.usage.as_dict(),
        "attribution": attribution(answer),
        "declined": answer.declined,
    }
    if answer.visual_facts:
        out["visual_facts"] = answer.visual_facts
    if answer.search_report is not None:
        out["search_report"] = answer.search_report
    if answer.reasoning is not None:
        out["reasoning"] = answer.reasoning  # the steps: each query, its sources, partial answer, time
    if answer.related_questions:
        out["related_questions"] = answer.related_questions
    if answer.grounding is not None:
        out["grounding"] = answer.grounding  # drafts written, sent back (and why), sentences left out
    return out
