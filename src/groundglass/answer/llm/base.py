"""The one interface every LLM runtime implements.

Runtimes: ``llama_cpp_runtime.LlamaCppLLM`` (in-process GGUF through llama-cpp-python) and
``openai_runtime.OpenAICompatibleLLM`` (any OpenAI-compatible HTTP endpoint). ``load.load_llm(spec,
settings)`` picks one from a model spec string.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from groundglass.answer.types import ChatMessage

__all__ = ["LLM", "ChatMessage", "Completion"]


@dataclass
class Completion:
    """Filled in by ``LLM.stream`` as it goes; read it after the iterator is exhausted."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    cached_tokens: int = 0  # prompt tokens found in the runtime's cache (not evaluated again)
    decode_steps: int = 0  # model evaluations while generating (fewer than the tokens when drafts were taken)


class LLM(Protocol):
    name: str  # what goes in the response's "model" field
    context_length: int

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.2,
        top_p: float | None = None,
        stop: list[str] | None = None,
        completion: Completion | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield text pieces as the model generates them; fill ``completion`` with token counts. Once
        ``cancel`` is set, the runtime stops as soon as it can (in the prompt's prefill too) and the
        iterator ends."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer (an estimate for HTTP runtimes)."""
        ...

    def complete_json(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        completion: Completion | None = None,
    ) -> Any:
        """The reply to ``messages`` as a JSON value that ``schema`` (a JSON schema) accepts.

        Generation is constrained to the schema where the runtime can (see ``structured``); the result
        is always parsed and validated. Raises ``structured.StructuredOutputError`` (a ``ModelError``)
        when the output is malformed, ``GroundglassError`` (param ``response_format``) when the schema
        itself is invalid."""
        ...
