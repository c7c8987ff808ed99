"""The checks a request passes before the engine starts: each bad value is refused at the call.

The CLI and the server turn a :class:`~groundglass.errors.GroundglassError` raised here into a
clean error naming the parameter and the fix, instead of a failure half-way through a stream. Also
here: the earlier turns of a conversation as the answer prompt shows them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from groundglass.answer import cite, conversation
from groundglass.answer.effort import EffortPreset
from groundglass.answer.llm.base import LLM
from groundglass.answer.retrieve import SEARCH_MODES
from groundglass.answer.types import AskRequest, ChatMessage
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.config import Settings


def question_messages(request: AskRequest) -> list[ChatMessage]:
    """The request's messages, an image sent alone asked about as "what is this?"; refuses an empty
    question and a conversation :func:`~groundglass.answer.conversation.check_messages` refuses."""
    messages = list(request.messages)
    if request.images and messages and messages[-1].role == "user" and not messages[-1].content.strip():
        from groundglass.answer.vision import IMPLIED_QUESTION

        # an image alone: "what is this?"
        messages[-1] = ChatMessage("user", IMPLIED_QUESTION.capitalize())
    if messages and not any(m.content.strip() for m in messages if m.role == "user"):
        raise GroundglassError(
            "the question is empty",
            'ask something, e.g. groundglass ask "Who was Ada Lovelace?"',
            param="messages",
        )
    conversation.check_messages(messages)
    if request.response_schema is not None:
        from groundglass.answer.llm.structured import check_schema

        check_schema(request.response_schema)
    return messages


def answer_max_tokens(request: AskRequest, settings: Settings, effort: EffortPreset) -> int:
    """The answer's token limit: the request's, else the config's, else the effort's; at least 1."""
    max_tokens = (
        request.max_tokens
        if request.max_tokens is not None
        else settings.llm.max_tokens
        if settings.llm.max_tokens is not None
        else effort.answer_max_tokens
    )
    if max_tokens < 1:
        raise GroundglassError(
            f"max_tokens must be at least 1, got {max_tokens}", "raise --max-tokens", param="max_tokens"
        )
    return max_tokens


def check_search(request: AskRequest) -> None:
    """Refuse a ``top_k`` below 1 and an unknown search mode."""
    if request.top_k is not None and request.top_k < 1:
        raise GroundglassError(
            f"top_k must be at least 1, got {request.top_k}", "raise --top-k", param="top_k"
        )
    if request.search not in SEARCH_MODES:
        raise GroundglassError(
            f"search must be one of {', '.join(SEARCH_MODES)}, got {request.search!r}",
            "use index (the local index) or web (the search providers)",
            param="search",
        )


def check_prompt_lengths(llm: LLM, question: str, instructions: str) -> None:
    """Refuse a question over half the model's context and a system message over an eighth of it
    (the system message is added to every answer's prompt)."""
    if llm.count_tokens(question) > llm.context_length // 2:
        raise GroundglassError(
            f"the question is {llm.count_tokens(question)} tokens, more than half of "
            f"the model's {llm.context_length}-token context",
            "shorten the question",
            param="messages",
        )
    if instructions and (n := llm.count_tokens(instructions)) > llm.context_length // 8:
        raise GroundglassError(
            f"the system message is {n} tokens, more than an eighth of the model's "
            f"{llm.context_length}-token context",
            "shorten the system message: it is added to every answer's prompt",
            param="messages",
        )


def prompt_history(earlier: Sequence[ChatMessage], llm: LLM, budget: int) -> list[ChatMessage]:
    """Earlier turns as the answer prompt shows them: citation markers and <think> blocks taken out
    (they referred to that turn's sources), the oldest dropped to fit ``budget`` tokens."""
    turns = [ChatMessage(m.role, cite.strip_markers(_THINK.sub("", m.content)).strip()) for m in earlier]
    turns = [m for m in turns if m.content]
    if not turns:
        return []
    fitted = conversation.fit_history([*turns, ChatMessage("user", "")], budget, llm.count_tokens)
    return [m for m in fitted[:-1] if m.role != "system"]


_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)
