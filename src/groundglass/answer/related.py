"""Related questions (the API's ``return_related_questions``): follow-ups that the sources can answer.

The model reads the sources' titles with their first sentence, the question and the start of its
answer, and writes questions under a JSON schema: an array of strings whose pattern makes each one a
question (a question word first, "?" last), which the grammar enforces token by token. What comes back is
cleaned: numbering and quotes removed, a "?" added, repeats and the question itself dropped, and, when
an embedder is given, questions that no source is close to (MiniLM cosine below the relevance floor
that the engine uses for sources) dropped too. Any failure gives an empty list: related questions are
an extra, never a reason to fail an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from groundglass.answer import querytext
from groundglass.answer.conversation import RELEVANCE_FLOOR, Embedder, source_similarity
from groundglass.answer.llm.base import LLM, ChatMessage, Completion
from groundglass.answer.types import Source
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

log = get_logger(__name__)

MIN_QUESTIONS, MAX_QUESTIONS = 3, 5
QUESTION_MAX_CHARS = 120
SOURCES_SHOWN = 6
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")

RELATED_SYSTEM = "You suggest follow-up questions that the sources can answer. Reply in JSON."
# The grammar makes each item a question: a question word first, one "?" at the end.
QUESTION_PATTERN = (
    r"^(What|Who|When|Where|Which|Why|How|Is|Are|Was|Were|Did|Does|Do|Can|In) "
    r'[^"\\?]{8,110}[?]$'
)


def related_schema(n: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "minItems": 1,
                "maxItems": n,
                "items": {"type": "string", "pattern": QUESTION_PATTERN},
            }
        },
        "required": ["questions"],
        "additionalProperties": False,
    }


def related_messages(question: str, answer: str, sources: Sequence[Source], n: int) -> list[ChatMessage]:
    """Sources first, the instruction last (small models follow the last thing they read best)."""
    lines = [
        f"- {' '.join(s.title.split())}: {querytext.first_sentence(s.text, 160)}"
        for s in list(sources)[:SOURCES_SHOWN]
    ]
    user = (
        "Sources:\n"
        + "\n".join(lines or ["- none"])
        + f"\n\nThe reader asked: {' '.join(question.split())}\n"
        f"The answer was: {querytext.first_sentence(answer, 300)}\n"
        f"Write {n} new questions about other facts in the sources."
    )
    return [ChatMessage("system", RELATED_SYSTEM), ChatMessage("user", user)]


def clean_questions(candidates: Sequence[Any], question: str, n: int) -> list[str]:
    """Strings from ``candidates`` made into distinct questions ending in "?", none equal to ``question``."""
    seen = {querytext.normalize(question)}
    out: list[str] = []
    for c in candidates:
        if not isinstance(c, str):
            continue
        text = " ".join(_NUMBERING.sub("", c).split()).strip(" \"'")
        text = text.rstrip(" .!?")[:QUESTION_MAX_CHARS].rstrip()
        if len(querytext.words(text)) < 3:
            continue
        text = text[:1].upper() + text[1:] + "?"
        key = querytext.normalize(text)
        if key in seen:
            continue
        seen.add(key)
        out.append(text)
    return out[:n]


def related_questions(
    llm: LLM,
    question: str,
    answer: str,
    sources: Sequence[Source],
    n: int = 4,
    *,
    embedder: Embedder | None = None,
    relevance_floor: float = RELEVANCE_FLOOR,
    completion: Completion | None = None,
) -> list[str]:
    """Up to ``n`` (3-5) follow-up questions that ``sources`` can answer; [] without sources or on failure."""
    n = max(MIN_QUESTIONS, min(MAX_QUESTIONS, n))
    if not sources:
        return []
    try:
        raw = llm.complete_json(
            related_messages(question, answer, sources, n),
            related_schema(n),
            max_tokens=16 + n * (QUESTION_MAX_CHARS // 3 + 4),
            temperature=0.0,
            completion=completion,
        )
    except GroundglassError as exc:
        log.info("related_questions_failed", error=exc.message)
        return []
    candidates = raw.get("questions") if isinstance(raw, dict) else None
    if not isinstance(candidates, list):
        return []
    out = clean_questions(candidates, question, n)
    if embedder is not None and out:
        try:
            out = [q for q in out if float(source_similarity(sources, q, embedder).max()) >= relevance_floor]
        except Exception as exc:  # only a filter: keep the questions rather than fail
            log.warning("related_questions_filter_failed", error=repr(exc))
    return out
