"""GGUF models in-process through llama-cpp-python.

The chat prompt is rendered with the GGUF's own chat template (``tokenizer.chat_template``, through
llama-cpp-python's ``Jinja2ChatFormatter``, exactly as ``Llama.create_chat_completion`` does), then
tokenized here and streamed with ``Llama.create_completion``. Rendering it ourselves costs nothing and
gives two things the chat call hides: the exact prompt token count, and the ability to pre-fill a
prompt prefix (:meth:`LlamaCppLLM.warm`) while the caller is still searching.

One ``Llama`` object serves every call (see ``load.load_llama``), so llama.cpp keeps the KV cache of
the previous prompt and only evaluates the part of the next prompt that differs: a fixed system
prompt is processed once per process. ``LlamaRAMCache`` is not used: it snapshots the whole context
state after every call, which only pays off when several unrelated conversations alternate, and the
prefix reuse above already covers the common case of a shared system prompt.

Calls are serialized with a lock: one llama.cpp context cannot run two generations at once.

:meth:`LlamaCppLLM.complete_json` constrains sampling with a GBNF grammar compiled from a JSON schema
(llama-cpp-python's converter, as ``create_chat_completion(response_format=...)`` does) but keeps this
module's own prompt path (same template, same KV-cache prefix reuse, same lock). Greedy decoding
(temperature 0, what the planner and the rewriter use) runs its own loop: llama-cpp-python's sampler
chain applies the grammar to every token of the vocabulary at every step (~60 ms a token for Qwen's
152k tokens here, about as long as the forward pass), while the loop checks the model's top token
first and only filters the whole vocabulary when the grammar rejects it, as llama.cpp's own
``common_sampler`` does. The result is the same token the full filter would pick.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from groundglass.answer.llm import structured
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.errors import GroundglassError, ModelError
from groundglass.log import get_logger

log = get_logger(__name__)

GGUF_MAGIC = b"GGUF"
REPEAT_PENALTY = 1.0  # off, as in Llama.create_chat_completion: RAG answers should repeat source words


def check_gguf(path: Path) -> None:
    """Raise :class:`ModelError` unless ``path`` is a readable file that starts like a GGUF model."""
    if not path.exists():
        raise ModelError(f"model file {path} does not exist",
                         "check the path, or use --model default|fast|tiny for an embedded model")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file", "give the path of a .gguf file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}", "check its permissions") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(f"model file {path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')",
                         "give a .gguf model (llama.cpp format), or re-download the file")


def default_threads() -> int:
    """CPU cores this process may use (respects taskset/cgroup affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=64)
def _grammar_for(schema_text: str) -> Any:
    """The GBNF grammar for a JSON schema given as text. The grammar writes properties in the schema's
    order, so list first what the model should decide first. Any-JSON when the converter cannot
    handle the schema (the result is still validated against it afterwards)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(schema_text, verbose=False)
    except Exception as exc:  # the converter asserts/raises on keywords it does not support
        log.warning("json_schema_grammar_fallback", error=repr(exc))
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)


class LlamaCppLLM:
    """An :class:`~groundglass.answer.llm.base.LLM` backed by one llama.cpp context."""

    def __init__(self, path: Path, *, context_length: int = 4096, threads: int | None = None,
                 name: str | None = None, repeat_penalty: float = REPEAT_PENALTY) -> None:
        path = Path(path).expanduser()
        check_gguf(path)
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = path
        self.name = name or path.stem
        self.threads = threads or default_threads()
        self.repeat_penalty = repeat_penalty
        try:
            self._llama = Llama(model_path=str(path), n_ctx=context_length, n_threads=self.threads,
                                n_threads_batch=self.threads, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp could not load {path}: {exc}",
                             "the file may be truncated or use an architecture this llama.cpp build does "
                             "not know; re-download it or pick another model") from exc
        self.context_length = self._llama.n_ctx()
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"model {path.name} has no chat template in its GGUF metadata (a base model?)",
                             "use an instruct/chat model")
        eos_id, bos_id = self._llama.token_eos(), self._llama.token_bos()
        vocab = self._llama._model
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(eos_id) if eos_id != -1 else "",
            bos_token=vocab.token_get_text(bos_id) if bos_id != -1 else "",
        )
        self._prefix_formatter = Jinja2ChatFormatter(
            template=template, eos_token=self._formatter.eos_token, bos_token=self._formatter.bos_token,
            add_generation_prompt=False,
        )
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._llama.close()

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def render(self, messages: list[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text the model sees for ``messages`` under its chat template."""
        formatter = self._formatter if add_generation_prompt else self._prefix_formatter
        try:
            return formatter(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt
        except Exception as exc:  # jinja2 errors, raise_exception() calls inside templates
            raise GroundglassError(f"the chat template of {self.name} rejected these messages: {exc}",
                                   "check the message roles (system/user/assistant, alternating)") from exc

    def prompt_tokens(self, messages: list[ChatMessage], *, add_generation_prompt: bool = True) -> list[int]:
        text = self.render(messages, add_generation_prompt=add_generation_prompt)
        return self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    @property
    def cached_tokens(self) -> int:
        """How many tokens of the last prompt (+ output) llama.cpp holds in its KV cache."""
        return int(self._llama.n_tokens)

    def warm(self, messages_prefix: list[ChatMessage]) -> int:
        """Evaluate the prompt prefix for ``messages_prefix`` now, so the next :meth:`stream` whose
        messages start with them only pays for the rest. Returns the number of tokens evaluated."""
        tokens = self.prompt_tokens(messages_prefix, add_generation_prompt=False)
        if len(tokens) >= self.context_length:
            return 0
        with self._lock:
            try:
                return self._prefill(tokens)
            except AttributeError:  # llama-cpp-python internals moved: warming is only an optimization
                self._llama.reset()
                return 0

    def _prefill(self, tokens: list[int]) -> int:
        """Keep the cached tokens that match ``tokens``, evaluate the rest (llama-cpp-python 0.3.x)."""
        llama = self._llama
        cached = llama.n_tokens
        common = 0
        for a, b in zip(llama.input_ids[:cached].tolist(), tokens, strict=False):
            if a != b:
                break
            common += 1
        if common == len(tokens):
            return 0
        if not llama._ctx.kv_cache_seq_rm(-1, common, -1):
            llama.reset()
            common = 0
        llama.n_tokens = common
        llama.eval(tokens[common:])
        llama._requires_eval = True  # logits belong to the prefix, not a full prompt
        return len(tokens) - common

    def stream(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float = 0.2,
               top_p: float | None = None, stop: list[str] | None = None,
               completion: Completion | None = None) -> Iterator[str]:
        """Stream the reply to ``messages``. The model is locked until the iterator is exhausted or
        closed: exhaust it, or call its ``close()`` when stopping early."""
        completion = completion if completion is not None else Completion()
        tokens = self.prompt_tokens(messages)
        completion.prompt_tokens = len(tokens)
        if len(tokens) >= self.context_length:
            raise GroundglassError(
                f"the prompt has {len(tokens)} tokens, more than the model's context of "
                f"{self.context_length}",
                "raise llm.context_length, or lower retrieval.context_tokens / shorten the conversation")
        stops = [*(stop or []), *([self._formatter.eos_token] if self._formatter.eos_token else [])]
        pieces: list[str] = []
        with self._lock:
            try:
                chunks: Iterator[Any] = self._llama.create_completion(
                    tokens, max_tokens=max_tokens, temperature=temperature,
                    top_p=0.95 if top_p is None else top_p, stop=stops, repeat_penalty=self.repeat_penalty,
                    stream=True,
                )  # type: ignore[assignment]
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    piece = choice.get("text") or ""
                    if piece:
                        pieces.append(piece)
                        yield piece
                    if choice.get("finish_reason"):
                        completion.finish_reason = choice["finish_reason"]
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"llama.cpp failed while generating with {self.name}: {exc}",
                                 "retry with a shorter prompt, or check the model file") from exc
            finally:
                # Exact for the prompt; the output is re-tokenized, which matches the sampled tokens
                # except for rare alternative merges.
                completion.completion_tokens = self.count_tokens("".join(pieces))

    def complete_json(self, messages: list[ChatMessage], schema: dict[str, Any], *, max_tokens: int,
                      temperature: float = 0.0, completion: Completion | None = None) -> Any:
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
                "raise llm.context_length, or shorten the prompt")
        grammar = _grammar_for(json.dumps(schema))
        max_tokens = min(max_tokens, room)
        with self._lock:
            try:
                fast = None
                if temperature <= 0 and self.repeat_penalty == 1.0:
                    try:
                        fast = self._greedy_constrained(tokens, grammar._grammar, max_tokens)
                    except AttributeError:  # llama-cpp-python internals moved: take the library's path
                        self._llama.reset()
                if fast is not None:
                    text, completion.finish_reason, completion.completion_tokens = fast
                else:
                    stops = [self._formatter.eos_token] if self._formatter.eos_token else []
                    out: Any = self._llama.create_completion(
                        tokens, max_tokens=max_tokens, temperature=temperature, top_p=1.0, stop=stops,
                        repeat_penalty=self.repeat_penalty, grammar=grammar, stream=False)
                    choice = out["choices"][0]
                    text = choice.get("text") or ""
                    completion.finish_reason = choice.get("finish_reason") or "stop"
                    usage = out.get("usage") or {}
                    completion.completion_tokens = (int(usage.get("completion_tokens") or 0)
                                                    or self.count_tokens(text))
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"llama.cpp failed while generating with {self.name}: {exc}",
                                 "retry with a shorter prompt, or check the model file") from exc
        log.debug("complete_json", model=self.name, prompt_tokens=len(tokens),
                  completion_tokens=completion.completion_tokens, text=json.dumps(text)[:200])
        return structured.parse_json_output(text, schema, model=self.name,
                                            finish_reason=completion.finish_reason)

    def _greedy_constrained(self, tokens: list[int], gbnf: str, max_tokens: int) -> tuple[str, str, int]:
        """Greedy decoding of ``tokens`` under the grammar ``gbnf``: (text, finish reason, tokens generated).

        Call with the lock held. The top token is checked alone; the grammar filters the whole vocabulary
        only when it rejects that token (see the module docstring)."""
        import ctypes

        import llama_cpp
        import numpy as np

        llama = self._llama
        vocab = llama._model.vocab
        n_vocab = llama.n_vocab()
        # Reuse the cached prefix, but evaluate at least the last prompt token: its logits start decoding.
        cached = llama.n_tokens
        common = 0
        for a, b in zip(llama.input_ids[:cached].tolist(), tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)
        if not llama._ctx.kv_cache_seq_rm(-1, common, -1):
            llama.reset()
            common = 0
        llama.n_tokens = common
        llama.eval(tokens[common:])

        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not sampler:
            raise ModelError(f"llama.cpp could not compile the grammar for {self.name}",
                             "simplify the JSON schema")
        one = (llama_cpp.llama_token_data * 1)()
        every = (llama_cpp.llama_token_data * n_vocab)()
        view = np.frombuffer(every, dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)]))
        out: list[int] = []
        finish = "length"
        try:
            for _ in range(max_tokens):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1),
                                               shape=(n_vocab,))
                token = int(np.argmax(logits))
                one[0].id, one[0].logit, one[0].p = token, float(logits[token]), 0.0
                candidates = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
                if not np.isfinite(one[0].logit):  # rejected: filter the whole vocabulary
                    view["id"] = np.arange(n_vocab, dtype=np.intc)
                    view["logit"] = logits
                    view["p"] = 0.0
                    candidates = llama_cpp.llama_token_data_array(data=every, size=n_vocab, selected=-1,
                                                                  sorted=False)
                    llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
                    best = int(np.argmax(view["logit"]))
                    if not np.isfinite(view["logit"][best]):
                        finish = "stop"  # the grammar allows nothing more
                        break
                    token = int(view["id"][best])
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                llama_cpp.llama_sampler_accept(sampler, token)
                out.append(token)
                llama.eval([token])
        finally:
            llama_cpp.llama_sampler_free(sampler)
        text = llama.detokenize(out).decode("utf-8", errors="replace")
        return text, finish, len(out)
