"""The prompt path of :class:`~groundglass.answer.llm.llama_cpp_runtime.LlamaCppLLM`: evaluate only the
part of a prompt that the KV cache does not hold already, and keep contexts it would otherwise lose.

One ``Llama`` object serves every call, so llama.cpp keeps the KV cache of the previous prompt and only
evaluates the part of the next prompt that differs: a fixed system prompt is processed once per process.

What that prefix reuse alone loses is a conversation: between two answers of a chat the engine makes
other calls (the follow-up's query rewrite, the planner), whose prompts share nothing with the
conversation and so evict it from the cache; the next answer would then re-read the whole history.
So before a prompt evicts a long cached context, its KV cells are copied out
(``llama_state_seq_get_data``, the KV of the one sequence only: a few MB per thousand tokens, not the
300 MB of logits ``Llama.save_state`` copies along), and a later prompt that shares more of its start
with a saved context than with the live one gets it copied back (``llama_state_seq_set_data``). A
follow-up thus evaluates the last exchange (asked plainly, without its sources) and its own question,
not the whole history. ``snapshots`` bounds how many
contexts are kept (least recently used go first); ``reused_tokens`` tells how much of the last prompt
came from the cache.

A new process starts with an empty cache: the first prompt prefix it warms is also kept on disk, and the
next process copies it back before its first prompt (:mod:`.prompt_cache`).

``KvReuse`` is a mixin of ``LlamaCppLLM`` (kept apart because it is a job of its own: which cached
tokens to keep, save and bring back); its methods run on the runtime's owner thread and use its model.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundglass.answer.llm import prompt_cache
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.answer.llm.owner import Steps

log = get_logger(__name__)


@dataclass
class Snapshot:
    """A context saved out of llama.cpp's KV cache, to be copied back for a prompt that starts alike."""

    tokens: list[int]  # what the saved KV cells hold, position by position
    kv: bytes  # llama_state_seq_get_data of sequence 0


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class KvReuse:
    """Prefill with prefix reuse and KV snapshots, for
    :class:`~groundglass.answer.llm.llama_cpp_runtime.LlamaCppLLM`."""

    # what the runtime provides
    _llama: Any
    snapshots: int  # evicted contexts kept for reuse
    snapshot_min_tokens: int  # shorter contexts are cheaper to re-evaluate than to keep
    _snapshots: list[Snapshot]  # most recently used last (owner thread only)
    reused_tokens: int  # prompt tokens the last call found in the cache (live or restored)
    prompt_cache_file: Path | None  # where the first prompt prefix is kept for the next process, if anywhere
    _prompt_cache_read: bool  # the file was looked at (the first prompt only)

    def _prefill(
        self, tokens: list[int], cancel: threading.Event, *, prefix: bool = False, last_again: bool = False
    ) -> Steps[int]:
        """Keep the cached tokens that match ``tokens`` and evaluate the rest, one batch of ``n_batch`` tokens
        a step: the batches ``Llama.eval`` (and so ``create_completion``) would make in one call, so the
        results, and greedy answers, are the same as without steps. ``prefix``: ``tokens`` are only a
        prompt's start, whose logits sample nothing. ``last_again``: evaluate at least the last token
        (its logits start decoding). Returns how many tokens the cache held (llama-cpp-python 0.3.x)."""
        llama = self._llama
        cached = self._resume(tokens)
        common = min(cached, len(tokens) - 1) if last_again else cached
        if common >= len(tokens):
            return cached  # all there (a warm keeps whatever the cache holds beyond the prefix)
        if not llama._ctx.kv_cache_seq_rm(-1, common, -1):
            llama.reset()
            common = 0
        llama.n_tokens = common
        for start in range(common, len(tokens), llama.n_batch):
            if cancel.is_set():
                break
            llama.eval(tokens[start : start + llama.n_batch])
            yield
        if prefix:
            llama._requires_eval = True  # logits belong to the prefix, not a full prompt
        return cached

    def _resume(self, tokens: list[int]) -> int:
        """Before evaluating ``tokens`` (owner thread): keep the live context if it would be lost, bring
        back a saved one that shares a longer start with ``tokens``; return how many tokens are cached."""
        llama = self._llama
        live = llama.input_ids[: llama.n_tokens].tolist()
        if not live and self.prompt_cache_file is not None and not self._prompt_cache_read:
            self._prompt_cache_read = True  # once: later prompts find it in the snapshots, or live
            kept = prompt_cache.load(self.prompt_cache_file)
            if kept is not None:
                self._snapshots.append(Snapshot(tokens=kept[0], kv=kept[1]))
        common = common_prefix(live, tokens)
        best, best_common = None, common
        for snapshot in self._snapshots:
            shared = common_prefix(snapshot.tokens, tokens)
            if shared > best_common:
                best, best_common = snapshot, shared
        if self.snapshots > 0 and len(live) - common >= self.snapshot_min_tokens:
            self._save(live, keep=best)  # about to be overwritten
        if best is not None and best_common - common >= self.snapshot_min_tokens // 4:
            try:
                self._restore(best)
                common = best_common
            except (AttributeError, RuntimeError) as exc:  # only an optimization: start from nothing
                log.warning("kv_restore_failed", error=repr(exc))
                self._snapshots.clear()
                llama.reset()
                common = 0
        self.reused_tokens = common
        return common

    def _save(self, tokens: list[int], keep: Snapshot | None = None) -> None:
        """Copy the KV cells of the live context (``tokens``) into a snapshot; when over the limit, drop the
        least recently used one other than ``keep``."""
        kept = [s for s in self._snapshots if common_prefix(s.tokens, tokens) < len(s.tokens)]  # superseded
        if any(common_prefix(s.tokens, tokens) == len(tokens) for s in kept):
            self._snapshots = kept  # already held by a longer snapshot
            return
        snapshot = self._copy_out(tokens)
        if snapshot is None:
            return
        kept.append(snapshot)
        while len(kept) > self.snapshots:
            kept.remove(next(s for s in kept if s is not keep))
        self._snapshots = kept
        log.debug("kv_snapshot_saved", tokens=len(tokens), bytes=len(snapshot.kv), kept=len(self._snapshots))

    def _copy_out(self, tokens: list[int]) -> Snapshot | None:
        """The KV cells of the live context (which holds ``tokens``), or None when llama.cpp gives none."""
        import llama_cpp

        ctx = self._llama._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0))
        return Snapshot(tokens=tokens, kv=ctypes.string_at(buffer, written)) if written > 0 else None

    def _keep_on_disk(self, cached: int) -> None:
        """After a prompt prefix was evaluated with nothing reused (``cached`` 0), keep its cells in the
        prompt cache for the next process (:mod:`.prompt_cache`)."""
        llama = self._llama
        if self.prompt_cache_file is None or cached > 0 or llama.n_tokens < self.snapshot_min_tokens // 4:
            return
        snapshot = self._copy_out(llama.input_ids[: llama.n_tokens].tolist())
        if snapshot is not None:
            prompt_cache.save(self.prompt_cache_file, snapshot.tokens, snapshot.kv)

    def _restore(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the live context (its logits are not restored: callers evaluate at least one
        token before sampling, as ``Llama.generate`` does)."""
        import llama_cpp

        llama = self._llama
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        llama.n_tokens = 0
        buffer = (ctypes.c_uint8 * len(snapshot.kv)).from_buffer_copy(snapshot.kv)
        loaded = int(llama_cpp.llama_state_seq_set_data(llama._ctx.ctx, buffer, len(snapshot.kv), 0))
        if loaded != len(snapshot.kv):
            raise RuntimeError("llama_state_seq_set_data refused the snapshot")
        n = len(snapshot.tokens)
        llama.input_ids[:n] = snapshot.tokens
        llama.n_tokens = n
        llama._requires_eval = True
        self._snapshots.remove(snapshot)
        self._snapshots.append(snapshot)
        log.debug("kv_snapshot_restored", tokens=n)
