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

Threads: llama.cpp's objects must not be used from two threads at once, nor freed while another thread
is inside them (either ends the process with SIGSEGV and no traceback). The engine does call from several
threads: the prompt prefix is pre-filled in a background thread while the search counts tokens, and the
server runs requests side by side. So one owner thread (:mod:`groundglass.answer.llm.owner`) loads the
model and runs every call that touches it: tokenizing, generating, KV snapshots, warming, and finally
freeing it (at ``close``, garbage collection or interpreter exit). Generations and prefills are tasks run
one after another, a token (or a prompt batch) a step; tokenizer calls from other threads run between
two steps, so they never wait for a whole generation. :meth:`LlamaCppLLM.stream` receives its pieces
through a queue and stops the generation at the next token when the consumer stops early.

:meth:`LlamaCppLLM.complete_json` (JSON under a grammar) lives in :mod:`.llama_cpp_json`.

Which part of a prompt is evaluated, and the KV snapshots, are :mod:`.llama_cpp_kv`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from groundglass.answer.llm import lookup, prompt_cache, repack
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.llama_cpp_json import JsonOutput
from groundglass.answer.llm.llama_cpp_kv import KvReuse, Snapshot
from groundglass.answer.llm.owner import Owner, Steps
from groundglass.errors import GroundglassError, ModelError
from groundglass.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")

GGUF_MAGIC = b"GGUF"
REPEAT_PENALTY = 1.0  # off, as in Llama.create_chat_completion: RAG answers should repeat source words
SNAPSHOTS = 2  # evicted contexts kept for reuse (the conversation, and one more)
SNAPSHOT_MIN_TOKENS = 128  # shorter contexts are cheaper to re-evaluate than to keep
_END = object()  # the end of a stream's pieces


def check_gguf(path: Path) -> None:
    """Raise :class:`ModelError` unless ``path`` is a readable file that starts like a GGUF model."""
    if not path.exists():
        raise ModelError(
            f"model file {path} does not exist",
            "check the path, or use --model default|fast|tiny for an embedded model",
        )
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file", "give the path of a .gguf file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}", "check its permissions") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(
            f"model file {path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')",
            "give a .gguf model (llama.cpp format), or re-download the file",
        )


def default_threads() -> int:
    """CPU cores this process may use (respects taskset/cgroup affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LlamaCppLLM(KvReuse, JsonOutput):
    """An :class:`~groundglass.answer.llm.base.LLM` backed by one llama.cpp context.

    Every llama.cpp call runs on the context's owner thread (:class:`~groundglass.answer.llm.owner.Owner`);
    the methods here only prepare the work, hand it over and wait for (or stream) its result."""

    def __init__(
        self,
        path: Path,
        *,
        context_length: int = 4096,
        threads: int | None = None,
        name: str | None = None,
        repeat_penalty: float = REPEAT_PENALTY,
        snapshots: int = SNAPSHOTS,
        snapshot_min_tokens: int = SNAPSHOT_MIN_TOKENS,
        lookup: bool = True,
        repack_weights: bool | None = None,
        prompt_cache_dir: Path | None = None,
    ) -> None:
        path = Path(path).expanduser()
        check_gguf(path)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.path = path
        self.name = name or path.stem
        self.threads = threads or default_threads()
        self.repeat_penalty = repeat_penalty
        self.lookup = lookup  # greedy answers take drafts from their prompt (:mod:`.lookup`)
        self.repack_weights = repack.repack_weights(path, repack_weights)  # :mod:`.repack`
        # the first prompt prefix, kept for the next process (:mod:`.prompt_cache`)
        self.prompt_cache_file = (
            None
            if prompt_cache_dir is None
            else prompt_cache.cache_file(prompt_cache_dir, path, repacked=self.repack_weights)
        )
        self._prompt_cache_read = False
        self._owner: Owner[Any] = Owner(
            f"llama-{self.name}", lambda: self._load(path, context_length), _free_llama
        )
        self.context_length, template, eos_token, bos_token = self._owner.call(self._describe)
        if not template:
            self._owner.stop()
            raise ModelError(
                f"model {path.name} has no chat template in its GGUF metadata (a base model?)",
                "use an instruct/chat model",
            )
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token)
        self._prefix_formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=eos_token,
            bos_token=bos_token,
            add_generation_prompt=False,
        )
        self.snapshots = snapshots
        self.snapshot_min_tokens = snapshot_min_tokens
        self._snapshots: list[Snapshot] = []  # most recently used last (owner thread only)
        self.reused_tokens = 0  # prompt tokens the last call found in the cache (live or restored)

    # --- on the owner thread --------------------------------------------------------------------------

    @property
    def _llama(self) -> Any:
        """The ``Llama`` object; only code running on the owner thread may touch it."""
        return self._owner.resource

    def _load(self, path: Path, context_length: int) -> Any:
        from llama_cpp import Llama

        try:
            with repack.model_params_with(repack=self.repack_weights):
                return Llama(
                    model_path=str(path),
                    n_ctx=context_length,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp could not load {path}: {exc}",
                "the file may be truncated or use an architecture this llama.cpp build does "
                "not know; re-download it or pick another model",
            ) from exc

    def _describe(self) -> tuple[int, str, str, str]:
        """(context length, chat template, eos text, bos text) of the loaded model."""
        llama = self._llama
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        vocab = llama._model
        return (
            int(llama.n_ctx()),
            llama.metadata.get("tokenizer.chat_template") or "",
            vocab.token_get_text(eos_id) if eos_id != -1 else "",
            vocab.token_get_text(bos_id) if bos_id != -1 else "",
        )

    # ------------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the owner thread (a running generation ends at its next token) and free the model on it.
        Later calls raise :class:`ModelError`."""
        self._owner.stop()

    def __del__(self) -> None:
        owner = getattr(self, "_owner", None)
        if owner is not None:  # the owner thread frees the model once its running step is done
            owner.stop(wait=False)

    def reset(self, *, snapshots: bool = False) -> None:
        """Forget the cached prompt (and, with ``snapshots``, the saved contexts): the next call evaluates
        its whole prompt. For benchmarks and tests that need a cold start."""

        def steps(cancel: threading.Event) -> Steps[None]:
            self._llama.reset()
            if snapshots:
                self._snapshots.clear()
            return
            yield  # a task: it waits for the running generation instead of resetting under it

        self._owner.submit(steps)[0].result()

    def iterate_on_owner(self, make: Callable[[Any], Iterator[T]]) -> Iterator[T]:
        """The items of ``make(llama)`` (``llama``: the ``Llama`` object), produced on the owner thread one
        per step and handed over through a queue: for benchmarks that time llama-cpp-python's own API
        beside this runtime's."""
        items: queue.SimpleQueue[object] = queue.SimpleQueue()

        def steps(cancel: threading.Event) -> Steps[None]:
            produced = make(self._llama)
            try:
                for item in produced:
                    items.put(item)
                    if cancel.is_set():
                        break
                    yield
            finally:
                close = getattr(produced, "close", None)
                if close is not None:
                    close()

        future, cancel = self._owner.submit(steps)
        future.add_done_callback(lambda _: items.put(_END))
        try:
            while (item := items.get()) is not _END:
                yield item  # type: ignore[misc]
            future.result()
        finally:
            cancel.set()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text.encode("utf-8"), special=False))

    def _tokenize(self, data: bytes, *, special: bool) -> list[int]:
        return self._owner.call(lambda: self._llama.tokenize(data, add_bos=False, special=special))

    def render(self, messages: list[ChatMessage], *, add_generation_prompt: bool = True) -> str:
        """The prompt text the model sees for ``messages`` under its chat template."""
        formatter = self._formatter if add_generation_prompt else self._prefix_formatter
        try:
            return formatter(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt
        except Exception as exc:  # jinja2 errors, raise_exception() calls inside templates
            raise GroundglassError(
                f"the chat template of {self.name} rejected these messages: {exc}",
                "check the message roles (system/user/assistant, alternating)",
            ) from exc

    def prompt_tokens(self, messages: list[ChatMessage], *, add_generation_prompt: bool = True) -> list[int]:
        text = self.render(messages, add_generation_prompt=add_generation_prompt)
        return self._tokenize(text.encode("utf-8"), special=True)

    @property
    def cached_tokens(self) -> int:
        """How many tokens of the last prompt (+ output) llama.cpp holds in its KV cache."""
        return int(self._owner.call(lambda: self._llama.n_tokens))

    def warm(self, messages_prefix: list[ChatMessage]) -> int:
        """Evaluate the prompt prefix for ``messages_prefix`` now, so the next :meth:`stream` whose
        messages start with them only pays for the rest. Returns the number of tokens evaluated."""
        tokens = self.prompt_tokens(messages_prefix, add_generation_prompt=False)
        if len(tokens) >= self.context_length:
            return 0
        future, _ = self._owner.submit(lambda cancel: self._warm_steps(tokens, cancel))
        return future.result()

    def _warm_steps(self, tokens: list[int], cancel: threading.Event) -> Steps[int]:
        try:
            cached = yield from self._prefill(tokens, cancel, prefix=True)
            if not cancel.is_set():
                self._keep_on_disk(cached)
            return max(0, int(self._llama.n_tokens) - cached)
        except AttributeError:  # llama-cpp-python internals moved: warming is only an optimization
            self._llama.reset()
            return 0

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
        """Stream the reply to ``messages``. The generation runs on the owner thread and hands its pieces
        over through a queue; closing the iterator early (or dropping it) stops it at the next token."""
        completion = completion if completion is not None else Completion()
        tokens = self.prompt_tokens(messages)
        completion.prompt_tokens = len(tokens)
        if len(tokens) >= self.context_length:
            raise GroundglassError(
                f"the prompt has {len(tokens)} tokens, more than the model's context of "
                f"{self.context_length}",
                "raise llm.context_length, or lower retrieval.context_tokens / shorten the conversation",
            )
        stops = [*(stop or []), *([self._formatter.eos_token] if self._formatter.eos_token else [])]
        pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        options = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": 0.95 if top_p is None else top_p,
            "stop": stops,
        }
        stop_event = cancel
        future, cancel = self._owner.submit(
            lambda cancel: self._generate_steps(tokens, options, completion, pieces, cancel)
        )
        future.add_done_callback(lambda _: pieces.put(_END))  # after its last piece, or when never run
        try:
            while (piece := self._next_piece(pieces, cancel, stop_event)) is not _END:
                yield str(piece)
            future.result()  # the generation's error, if it failed
            if cancel.is_set() and self._owner.stopping:
                # cut off by close(): an error, not a shorter answer that ends as if the model had finished
                raise ModelError(f"{self.name} is closed", "load the model again")
        finally:
            if future.cancel() or self._owner.on_owner():  # not started yet, or dropped on the owner thread
                pass
            elif not future.done():
                cancel.set()  # stopped early: end the generation at its next token, then let it settle
                with contextlib.suppress(Exception):
                    future.result()

    @staticmethod
    def _next_piece(
        pieces: queue.SimpleQueue[object], task_cancel: threading.Event, caller_cancel: threading.Event | None
    ) -> object:
        """The next piece; while waiting (a long prefill), the caller's ``cancel`` is handed on to the
        task, which stops at its next batch or token and then ends the stream."""
        if caller_cancel is None:
            return pieces.get()
        while True:
            try:
                return pieces.get(timeout=0.05)
            except queue.Empty:
                if caller_cancel.is_set():
                    task_cancel.set()

    def _generate_steps(
        self,
        tokens: list[int],
        options: dict[str, Any],
        completion: Completion,
        out: queue.SimpleQueue[object],
        cancel: threading.Event,
    ) -> Steps[None]:
        """The generation itself (owner thread): one token a step, each piece put on ``out``."""
        pieces: list[str] = []

        def put(piece: str) -> None:
            pieces.append(piece)
            out.put(piece)

        try:
            if self.lookup and options["temperature"] <= 0 and self.repeat_penalty == 1.0:
                # the prompt's last token is evaluated again, if cached, for the logits decoding starts from
                completion.cached_tokens = yield from self._prefill(tokens, cancel, last_again=True)
                if cancel.is_set():
                    return
                completion.finish_reason = yield from self._lookup_steps(options, put, completion, cancel)
                return
            # The prompt a batch a step; the library then finds it all cached and samples at once.
            completion.cached_tokens = yield from self._prefill(tokens, cancel)
            if cancel.is_set():
                return
            chunks: Iterator[Any] = self._llama.create_completion(
                tokens, repeat_penalty=self.repeat_penalty, stream=True, **options
            )  # type: ignore[assignment]
            try:
                for chunk in chunks:
                    completion.decode_steps += 1
                    choice = chunk["choices"][0]
                    piece = choice.get("text") or ""
                    if piece:
                        put(piece)
                    if choice.get("finish_reason"):
                        completion.finish_reason = choice["finish_reason"]
                    if cancel.is_set():
                        break
                    yield
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()  # the library's generator ends here, on the owner thread
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"llama.cpp failed while generating with {self.name}: {exc}",
                "retry with a shorter prompt, or check the model file",
            ) from exc
        finally:
            # Exact for the prompt; the output is re-tokenized, which matches the sampled tokens
            # except for rare alternative merges.
            completion.completion_tokens = self.count_tokens("".join(pieces))

    def _lookup_steps(
        self,
        options: dict[str, Any],
        put: Callable[[str], None],
        completion: Completion,
        cancel: threading.Event,
    ) -> Steps[str]:
        """Greedy decoding with drafts from the prompt (owner thread), after the prompt's prefill."""
        import llama_cpp

        llama = self._llama
        vocab = llama._model.vocab
        text = lookup.TextOut(lambda ids: llama.detokenize(ids), options["stop"], put)
        try:
            return (
                yield from lookup.greedy_steps(
                    llama,
                    text,
                    max_tokens=options["max_tokens"],
                    is_end=lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token)),
                    cancel=cancel,
                )
            )
        finally:
            llama._requires_eval = True  # the last logits may belong to a rejected draft
            completion.decode_steps = text.steps


def _free_llama(llama: Any) -> None:
    """Free the model and its context (called on the owner thread)."""
    llama.close()
