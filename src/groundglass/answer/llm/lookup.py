"""Greedy decoding with drafts looked up in the prompt ("prompt lookup decoding"), for
:class:`~groundglass.answer.llm.llama_cpp_runtime.LlamaCppLLM`.

A grounded answer copies its sources: "The default setting for SQLITE_MAX_COLUMN is 2000." is a
sentence of the limits page word for word. So after each token the last few tokens of the context are
looked up in the prompt, and the tokens that followed them there are proposed as a draft; one batch
evaluates the token and its draft, and every draft token the model would have chosen itself (its
argmax at the position before) is kept. On the 2 cores of the development machine a batch of 4 tokens
costs 1.4 times one token (130 ms against 93 ms: decoding reads every weight once per step, however
many tokens the step carries), so a draft that is right three times in four pays for itself several
times over, and a draft that is wrong costs 40% of one step. Greedy only: the choice at each position
is the argmax, exactly what plain greedy decoding picks (the batch's arithmetic can differ in the last
bits, as between any two batch sizes).

Written here rather than through llama-cpp-python's own ``draft_model`` (``LlamaPromptLookupDecoding``):
that path needs ``logits_all``, which keeps the logits of every position of the context (4096 x 151,936
floats, 2.5 GB for the default model) and computes them for every prompt token too, which slowed the
prefill by about 20% where it was measured; and its lookup takes the first match of a one- or two-token
n-gram anywhere, which drafted wrong often enough to make short answers slower. Here only the draft's
positions ask for logits, and a draft needs a match of at least :data:`MIN_NGRAM` tokens (the most
recent of the longest).

Measured with ``python -m bench.bench_lookup`` (15 grounded prompts cut from the three manuals, default
model, 2 cores, generation only, plain greedy decoding in the same run as the baseline): 1.27-1.38
times the tokens per second over four runs, the median answer in 0.73-0.96 of the time; 12 of 15
answers came out the same, the other three differ where plain greedy decoding's own cached and
uncached runs can differ (a near tie: "[1]" against "[1][2]", "4MB" against "four megabytes (4MB)").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from groundglass.answer.llm.owner import Steps

# Context tokens that must match the prompt before a draft is proposed: with 2, more drafts were wrong
# (bench_lookup: a short answer took up to 1.23 times as long; with 3, at most 1.02 times).
MIN_NGRAM = 3
MAX_NGRAM = 4  # longest match looked for (a longer one is a surer draft)
DRAFT_TOKENS = 4  # tokens proposed at once: a batch of 5 still costs about what one token does


def draft(
    ids: np.ndarray, *, min_ngram: int = MIN_NGRAM, max_ngram: int = MAX_NGRAM, k: int = DRAFT_TOKENS
) -> list[int]:
    """The tokens that followed the most recent earlier occurrence of the longest n-gram (``min_ngram``
    to ``max_ngram`` tokens) that ends ``ids``; [] when none occurs earlier."""
    n = len(ids)
    for size in range(min(max_ngram, n - 1), min_ngram - 1, -1):
        tail = ids[n - size :]
        windows = np.lib.stride_tricks.sliding_window_view(ids[: n - 1], size)
        hits = np.flatnonzero((windows == tail).all(axis=1))
        if len(hits):
            start = int(hits[-1]) + size
            return [int(t) for t in ids[start : min(start + k, n)]]
    return []


class TextOut:
    """The generated text as the caller receives it: pieces that never end inside a UTF-8 character or
    inside what may be the start of a stop string, cut at the first stop string."""

    def __init__(
        self, detokenize: Callable[[list[int]], bytes], stops: list[str], put: Callable[[str], None]
    ):
        self._detokenize = detokenize
        self._stops = [s for s in stops if s]
        self._put = put
        self.tokens: list[int] = []
        self.sent = 0  # characters handed on so far
        self.stopped = False
        self.steps = 0  # batches evaluated

    def add(self, token: int) -> None:
        self.tokens.append(token)
        data = self._detokenize(self.tokens)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:  # a character split over tokens: wait for its last byte
            text = data[: exc.start].decode("utf-8", errors="ignore")
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            text, self.stopped = text[:cut], True
            ready = len(text)
        else:
            held = max(
                (n for s in self._stops for n in range(len(s) - 1, 0, -1) if text.endswith(s[:n])), default=0
            )
            ready = len(text) - held
        if ready > self.sent:
            self._put(text[self.sent : ready])
            self.sent = ready


def greedy_steps(
    llama: Any, out: TextOut, *, max_tokens: int, is_end: Callable[[int], bool], cancel: threading.Event
) -> Steps[str]:
    """Decode greedily from the logits of the last evaluated position (the prompt's last token, which
    the caller evaluated), one batch a step, handing text to ``out``. Returns the finish reason:
    "stop" (an end token or a stop string) or "length". Leaves ``llama``'s token count and ids matching
    its KV cache, so the next prompt reuses what it shares with this one."""
    n_vocab = llama.n_vocab()
    ctx, batch = llama._ctx, llama._batch

    def best(i: int) -> int:
        return int(np.argmax(np.ctypeslib.as_array(ctx.get_logits_ith(i), shape=(n_vocab,))))

    pending = best(-1)
    room = llama.n_ctx() - 1
    while True:
        if is_end(pending):
            return "stop"
        out.add(pending)
        if out.stopped:
            return "stop"
        if len(out.tokens) >= max_tokens or cancel.is_set() or llama.n_tokens >= room:
            return "length"
        n = llama.n_tokens
        llama.input_ids[n] = pending
        drafted = draft(llama.input_ids[: n + 1])[: max(0, room - n - 1)]
        drafted = drafted[: max_tokens - len(out.tokens)]
        tokens = [pending, *drafted]
        batch.set_batch(batch=tokens, n_past=n, logits_all=True)
        ctx.decode(batch)
        out.steps += 1
        llama.input_ids[n : n + len(tokens)] = tokens
        kept = 1  # the pending token is in the cache now
        pending = best(0)
        for i, token in enumerate(drafted):
            if pending != token or is_end(token):
                break
            out.add(token)
            kept += 1
            if out.stopped or len(out.tokens) >= max_tokens:
                break
            pending = best(i + 1)
        if kept < len(tokens):
            ctx.kv_cache_seq_rm(-1, n + kept, -1)  # the draft's rejected tail
        llama.n_tokens = n + kept
        if out.stopped:
            return "stop"
        if len(out.tokens) >= max_tokens:  # the last draft token taken was the last one allowed
            return "length"
        yield
