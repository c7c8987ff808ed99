"""Related questions (the API's ``return_related_questions``): follow-ups that the sources can answer.

The model reads the sources' titles with their first sentence, the question and the start of its
answer, and writes questions under a JSON schema: an array of strings whose pattern makes each one a
question (a question word first, "?" last), which the grammar enforces token by token. What comes back is
cleaned: numbering and quotes removed, a "?" added, repeats and the question itself dropped, and, when
an embedder is given, questions that no source is close to (MiniLM cosine below the relevance floor
that the engine uses for sources) dropped too. Any failure gives an empty list: related questions are
an extra, never a reason to fail an answer.

When nothing survives the cleaning (a small model under greedy decoding may write the reader's own
question n times), a second pass anchors each question to a source: the schema gives one item per
source title that the question does not already name, and each item's pattern must contain that
title, so the questions differ by construction.
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
_PLAIN_TITLE = re.compile(r"[\w ,.'()-]{2,60}")

RELATED_SYSTEM = "You suggest follow-up questions that the sources can answer. Reply in JSON."
# The grammar makes each item a question: a question word first, one "?" at the end.
QUESTION_START = r"^(What|Who|When|Where|Which|Why|How|Is|Are|Was|Were|Did|Does|Do|Can|In) "
QUESTION_PATTERN = QUESTION_START + r'[^"\\?]{8,110}[?]$'
_FREE = r'[^"\\?]'  # any question text: no quote, backslash or question mark


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


def _title_pattern(title: str) -> str | None:
    """A regex fragment matching ``title`` literally (its first letter in either case: "what is
    radioactive decay"); None for titles a question pattern cannot hold."""
    if not _PLAIN_TITLE.fullmatch(title):
        return None
    head, rest = title[0], re.sub(r"([.()\-])", r"\\\1", title[1:])
    return (f"[{head.upper()}{head.lower()}]" if head.upper() != head.lower() else head) + rest


def anchored_schema(titles: Sequence[str]) -> dict[str, Any]:
    """Exactly one question per title, each of which must contain its title."""
    items = [
        {
            "type": "string",
            "pattern": f"{QUESTION_START}([a-z]{{1,12}} ){{0,4}}{_title_pattern(t)}{_FREE}{{0,60}}[?]$",
        }
        for t in titles
    ]
    return {
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "prefixItems": items,
                "minItems": len(items),
                "maxItems": len(items),
            }
        },
        "required": ["questions"],
        "additionalProperties": False,
    }


def unasked_titles(question: str, sources: Sequence[Source], n: int) -> list[str]:
    """Up to ``n`` distinct source titles that ``question`` does not already name and that a question
    pattern can hold."""
    asked = querytext.normalize(question)
    out: list[str] = []
    for s in sources:
        title = " ".join(s.title.split())
        if _title_pattern(title) and title not in out and querytext.normalize(title) not in asked:
            out.append(title)
    return out[:n]


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


def _ask(
    llm: LLM, messages: list[ChatMessage], schema: dict[str, Any], n: int, completion: Completion | None
) -> list[Any] | None:
    """The questions the model writes under ``schema`` (its tokens added to ``completion``); None when
    the call fails."""
    used = Completion()
    try:
        raw = llm.complete_json(
            messages,
            schema,
            max_tokens=16 + n * (QUESTION_MAX_CHARS // 3 + 4),
            temperature=0.0,
            completion=used,
        )
    except GroundglassError as exc:
        log.info("related_questions_failed", error=exc.message)
        return None
    finally:
        if completion is not None:
            completion.prompt_tokens += used.prompt_tokens
            completion.completion_tokens += used.completion_tokens
    candidates = raw.get("questions") if isinstance(raw, dict) else None
    return candidates if isinstance(candidates, list) else []


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
    messages = related_messages(question, answer, sources, n)
    written = _ask(llm, messages, related_schema(n), n, completion)
    if written is None:
        return []
    out = clean_questions(written, question, n)
    titles = [] if out else unasked_titles(question, sources, n)
    if titles:  # the model repeated the reader's question: one question per other source
        ask_each = messages[-1].content + f"\nAsk one about each of: {'; '.join(titles)}."
        anchored = [*messages[:-1], ChatMessage("user", ask_each)]
        out = clean_questions(_ask(llm, anchored, anchored_schema(titles), n, completion) or [], question, n)
    if embedder is not None and out:
        try:
            out = [q for q in out if float(source_similarity(sources, q, embedder).max()) >= relevance_floor]
        except Exception as exc:  # only a filter: keep the questions rather than fail
            log.warning("related_questions_filter_failed", error=repr(exc))
    return out
