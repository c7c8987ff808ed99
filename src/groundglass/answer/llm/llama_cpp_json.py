"""Structured output for :class:`~groundglass.answer.llm.llama_cpp_runtime.LlamaCppLLM`: JSON under a
grammar compiled from a JSON schema.

:meth:`JsonOutput.complete_json` constrains sampling with a GBNF grammar compiled from the schema
(:mod:`~groundglass.answer.llm.grammar`: llama-cpp-python's converter, with integer bounds) but keeps the
runtime's own prompt path (same template, same KV-cache prefix reuse, same owner thread). Greedy
decoding (temperature 0, what the planner and the rewriter use) runs its own loop: llama-cpp-python's
sampler chain applies the grammar to every token of the vocabulary at every step (with Qwen's 152k
tokens, about as long as the forward pass; ``bench/bench_structured.py`` measures it), while the loop
checks the model's top token first and only filters the whole vocabulary when the grammar rejects
it, as llama.cpp's own ``common_sampler`` does. The result is the same token the full filter would pick.

``JsonOutput`` is a mixin of ``LlamaCppLLM`` (kept apart because it is a job of its own: grammars
and a decode loop); it uses the runtime's prompt tokens, prefill, owner thread and model.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import TYPE_CHECKING, Any

from groundglass.answer.llm import structured
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.grammar import grammar_for
from groundglass.errors import GroundglassError, ModelError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from groundglass.answer.llm.owner import Owner, Steps

log = get_logger(__name__)


class JsonOutput:
    """``complete_json`` for :class:`~groundglass.answer.llm.llama_cpp_runtime.LlamaCppLLM`."""

    # what the runtime provides
    name: str
    context_length: int
    repeat_penalty: float
    _owner: Owner
    _llama: Any
    _formatter: Any
    prompt_tokens: Callable[..., list[int]]
    count_tokens: Callable[[str], int]
    _prefill: Callable[..., Steps[Any]]

    def complete_json(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        completion: Completion | None = None,
    ) -> Any:
        """The reply to ``messages`` sampled under a grammar built from ``schema``, parsed and validated
        (:class:`~groundglass.answer.llm.structured.StructuredOutputError` when it is not valid)."""
        structured.check_schema(schema)
        completion = completion if completion is not None else Completion()
        tokens = self.prompt_tokens(messages)
        completion.prompt_tokens = len(tokens)
        room = self.context_length - len(tokens)
        if room < 1:
            raise GroundglassError(
                f"the prompt has {len(tokens)} tokens, more than the model's context of "
                f"{self.context_length}",
                "raise llm.context_length, or shorten the prompt",
            )
        grammar = grammar_for(json.dumps(schema))
        max_tokens = min(max_tokens, room)
        future, cancel = self._owner.submit(
            lambda cancel: self._json_steps(tokens, grammar, max_tokens, temperature, completion, cancel)
        )
        text = future.result()
        if cancel.is_set():  # cut off by close(): not a malformed output of the model's
            raise ModelError(f"{self.name} is closed", "load the model again")
        log.debug(
            "complete_json",
            model=self.name,
            prompt_tokens=len(tokens),
            completion_tokens=completion.completion_tokens,
            text=json.dumps(text)[:200],
        )
        return structured.parse_json_output(
            text, schema, model=self.name, finish_reason=completion.finish_reason
        )

    def _json_steps(
        self,
        tokens: list[int],
        grammar: Any,
        max_tokens: int,
        temperature: float,
        completion: Completion,
        cancel: threading.Event,
    ) -> Steps[str]:
        """Constrained generation (owner thread): the greedy fast path, else the library's sampler."""
        try:
            fast = None
            if temperature <= 0 and self.repeat_penalty == 1.0:
                try:
                    fast = yield from self._greedy_constrained(tokens, grammar._grammar, max_tokens, cancel)
                except AttributeError:  # llama-cpp-python internals moved: take the library's path
                    self._llama.reset()
            if fast is not None:
                text, completion.finish_reason, completion.completion_tokens = fast
                return text
            stops = [self._formatter.eos_token] if self._formatter.eos_token else []
            yield from self._prefill(tokens, cancel)
            out: Any = self._llama.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=1.0,
                stop=stops,
                repeat_penalty=self.repeat_penalty,
                grammar=grammar,
                stream=False,
            )
            choice = out["choices"][0]
            text = choice.get("text") or ""
            completion.finish_reason = choice.get("finish_reason") or "stop"
            usage = out.get("usage") or {}
            completion.completion_tokens = int(usage.get("completion_tokens") or 0) or self.count_tokens(text)
            return text
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"llama.cpp failed while generating with {self.name}: {exc}",
                "retry with a shorter prompt, or check the model file",
            ) from exc

    def _greedy_constrained(
        self, tokens: list[int], gbnf: str, max_tokens: int, cancel: threading.Event
    ) -> Steps[tuple[str, str, int]]:
        """Greedy decoding of ``tokens`` under the grammar ``gbnf``: (text, finish reason, tokens generated).

        Runs on the owner thread, one token a step; :class:`GreedyGrammar` picks each token."""
        import llama_cpp
        import numpy as np

        llama = self._llama
        vocab = llama._model.vocab
        n_vocab = llama.n_vocab()
        # Reuse the cached prefix, but evaluate at least the last prompt token: its logits start decoding.
        yield from self._prefill(tokens, cancel, last_again=True)
        if cancel.is_set():
            return "", "length", 0

        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            raise ModelError(
                f"llama.cpp could not compile the grammar for {self.name}", "simplify the JSON schema"
            )
        pick = GreedyGrammar(sampler, n_vocab)
        out: list[int] = []
        finish = "length"
        try:
            for _ in range(max_tokens):
                if cancel.is_set():
                    break
                logits = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1), shape=(n_vocab,)
                )
                token = pick.best(logits)
                if token is None:
                    finish = "stop"  # the grammar allows nothing more
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                llama_cpp.llama_sampler_accept(sampler, token)
                out.append(token)
                llama.eval([token])
                yield
        finally:
            llama_cpp.llama_sampler_free(sampler)
        text = llama.detokenize(out).decode("utf-8", errors="replace")
        return text, finish, len(out)


class GreedyGrammar:
    """The greedy token under a grammar sampler: the model's top token when the grammar allows it,
    else the best of the tokens it allows, the whole vocabulary filtered (see the module docstring).
    The ctypes candidate arrays are made once and reused at every token."""

    def __init__(self, sampler: Any, n_vocab: int) -> None:
        import llama_cpp
        import numpy as np

        self.sampler = sampler
        self.n_vocab = n_vocab
        self.one = (llama_cpp.llama_token_data * 1)()
        self.every = (llama_cpp.llama_token_data * n_vocab)()
        self.view = np.frombuffer(
            self.every, dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)])
        )

    def best(self, logits: Any) -> int | None:
        """The token to take after ``logits``; None when the grammar allows no token at all."""
        import llama_cpp
        import numpy as np

        one, view, n_vocab = self.one, self.view, self.n_vocab
        token = int(np.argmax(logits))
        one[0].id, one[0].logit, one[0].p = token, float(logits[token]), 0.0
        candidates = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self.sampler, ctypes.byref(candidates))
        if np.isfinite(one[0].logit):
            return token
        view["id"] = np.arange(n_vocab, dtype=np.intc)  # rejected: filter the whole vocabulary
        view["logit"] = logits
        view["p"] = 0.0
        candidates = llama_cpp.llama_token_data_array(
            data=self.every, size=n_vocab, selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(self.sampler, ctypes.byref(candidates))
        best = int(np.argmax(view["logit"]))
        if not np.isfinite(view["logit"][best]):
            return None
        return int(view["id"][best])
