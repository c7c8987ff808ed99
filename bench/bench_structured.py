"""Schema-constrained generation: groundglass's greedy grammar loop against llama-cpp-python's own path.

``LlamaCppLLM.complete_json`` at temperature 0 checks the grammar on the model's top token first and
filters the whole vocabulary only when that token is rejected; the baseline is the same call through
``Llama.create_completion(grammar=...)``, whose sampler chain filters the whole vocabulary at every
token. Both decode the same prompt from an empty KV cache and must produce the same JSON (asserted).

Wall time on a shared CPU is noisy, so the bench also reports the time spent outside llama.cpp's
forward pass (``decode``, measured with cProfile): sampling, grammar and Python. That part is what the
two paths differ in.

    .venv/bin/python -m bench.bench_structured [--model default] [--threads 2] [--repeats 3]

Why the loop exists: llama-cpp-python's sampler chain spent ~60 ms a token applying the grammar to
Qwen's 152k-token vocabulary on the development machine, about as long as the forward pass.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from groundglass.answer import planner
from groundglass.answer.effort import preset_for
from groundglass.answer.llm.base import Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.load import load_llm
from groundglass.config import load_settings

QUESTION = "What is the population of the capital of the country where the Eiffel Tower is?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    llm = load_llm(args.model, load_settings(llm__threads=args.threads))
    assert isinstance(llm, LlamaCppLLM), "the bench compares two llama.cpp paths"
    n = preset_for("high", llm.name).max_sub_queries
    messages = planner.plan_messages(QUESTION, n)
    schema = planner.plan_schema(n)
    times: dict[str, list[float]] = {"groundglass": [], "llama-cpp-python": []}
    overhead: dict[str, list[float]] = {"groundglass": [], "llama-cpp-python": []}
    outputs: dict[str, str] = {}
    tokens = 0
    for _ in range(args.repeats):
        for path in times:
            llm.reset()  # same start for both: no cached prompt
            # repeat_penalty other than 1.0 sends complete_json down llama-cpp-python's path
            llm.repeat_penalty = 1.0 if path == "groundglass" else 1.0 + 1e-9
            completion = Completion()
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            value = llm.complete_json(
                messages, schema, max_tokens=planner.plan_max_tokens(n), completion=completion
            )
            profile.disable()
            wall = time.perf_counter() - started
            decode = sum(
                row[2]
                for (_, _, name), row in pstats.Stats(profile).stats.items()  # type: ignore[attr-defined]
                if name == "decode"
            )
            times[path].append(wall)
            overhead[path].append(wall - decode)
            outputs[path] = json.dumps(value)
            tokens = completion.completion_tokens
    llm.repeat_penalty = 1.0
    assert outputs["groundglass"] == outputs["llama-cpp-python"], outputs
    ours, base = statistics.median(times["groundglass"]), statistics.median(times["llama-cpp-python"])
    ours_o = statistics.median(overhead["groundglass"])
    base_o = statistics.median(overhead["llama-cpp-python"])
    print(
        f"{llm.name}, {args.threads} threads, plan of {tokens} tokens for a "
        f"{completion.prompt_tokens}-token prompt, median of {args.repeats}:"
    )
    print(
        f"  groundglass greedy grammar loop : {ours:6.2f} s wall, {ours_o:5.2f} s outside decode "
        f"({ours_o / tokens * 1000:.1f} ms a token)"
    )
    print(
        f"  llama-cpp-python grammar sampler: {base:6.2f} s wall, {base_o:5.2f} s outside decode "
        f"({base_o / tokens * 1000:.1f} ms a token) (baseline)"
    )
    print(
        f"  ratio: wall {base / ours:.2f}x, outside decode {base_o / max(ours_o, 1e-9):.1f}x; "
        f"same output: {outputs['groundglass']}"
    )


if __name__ == "__main__":
    main()
