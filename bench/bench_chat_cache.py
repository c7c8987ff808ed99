"""Follow-up turns with and without the runtime's KV snapshots: ``python -m bench.bench_chat_cache``.

A follow-up makes a rewrite call before its answer, and that call's prompt evicts the conversation
from llama.cpp's single cached prompt. ``LlamaCppLLM`` saves the evicted context's KV cells and
restores them for the answer (see ``groundglass.answer.llm.llama_cpp_runtime``). This runs the same
scripted conversation (the default model, the 10k-summary index, effort minimal, greedy decoding)
twice in one process: first with snapshots off (the baseline: ``snapshots=0``), then on, and prints
per turn the answer prompt's tokens, how many of them the cache already held, the time to the first
answer token and the turn's total time, then the follow-ups' medians and the ratio on / off. Greedy
decoding makes both runs write nearly the same answers: not always exactly, because llama.cpp
evaluates a restored prefix in different batches than a fresh one, and the float sums then differ in
their last bits, which can flip a near-tie between two tokens (its ordinary prefix cache does the
same). The bench prints how many follow-ups differ, and the first difference. Everything measured is
written to ``runs/bench_chat_cache.json``.

``llm.prefill_during_search`` is off here, so the answer prompt's cached tokens are what the cache
held when the answer began (with it on, the prefill beside the search re-reads the evicted history
instead, and both variants would show it cached: only their times would differ).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.eval_reasoning import prepare, timed_answer
from groundglass.answer.engine import Engine
from groundglass.answer.llm.llama_cpp_runtime import SNAPSHOTS, LlamaCppLLM
from groundglass.answer.types import AskRequest, ChatMessage

CONVERSATION = [
    "Tell me about the Eiffel Tower.",
    "Who designed it?",
    "In which year was that engineer born?",
    "What else did he build?",
    "And how tall is the tower?",
]


def run(engine: Any, llm: LlamaCppLLM, snapshots: int, max_tokens: int) -> list[dict[str, Any]]:
    llm.snapshots = snapshots
    llm.reset(snapshots=True)
    messages: list[ChatMessage] = []
    rows = []
    for turn, question in enumerate(CONVERSATION):
        request = AskRequest(
            messages=[*messages, ChatMessage("user", question)],
            reasoning_effort="minimal",
            max_tokens=max_tokens,
        )
        answer, timing = timed_answer(engine, request)
        if answer is None:
            raise SystemExit(f"turn {turn} failed: {timing.get('error')}")
        rows.append(
            {
                "turn": turn,
                "prompt": answer.usage.prompt_tokens,
                "cached": answer.usage.cached_tokens,
                "ttft": timing["first_token_s"],
                "seconds": timing["seconds"],
                "answer": answer.content,
            }
        )
        messages += [ChatMessage("user", question), ChatMessage("assistant", answer.content)]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=96, help="answer length per turn")
    args = ap.parse_args(argv)
    settings, engine = prepare(argparse.Namespace(model=args.model, threads=args.threads))
    engine = Engine(
        settings.model_copy(update={"llm": settings.llm.model_copy(update={"prefill_during_search": False})})
    )
    llm = engine.llm()
    if not isinstance(llm, LlamaCppLLM):
        print("error: this bench needs an in-process llama.cpp model", file=sys.stderr)
        return 2
    results = {name: run(engine, llm, n, args.max_tokens) for name, n in (("off", 0), ("on", SNAPSHOTS))}
    print(
        f"\n{'turn':>4} {'prompt':>7} | {'cached off':>10} {'1st tok off':>11} {'total off':>9} | "
        f"{'cached on':>9} {'1st tok on':>10} {'total on':>8}"
    )
    for off, on in zip(results["off"], results["on"], strict=True):
        print(
            f"{off['turn']:>4} {off['prompt']:>7} | {off['cached']:>10} {off['ttft']:>10.2f}s "
            f"{off['seconds']:>8.2f}s | {on['cached']:>9} {on['ttft']:>9.2f}s {on['seconds']:>7.2f}s"
        )
    follow_off, follow_on = results["off"][1:], results["on"][1:]
    for key, label in (("ttft", "time to first answer token"), ("seconds", "turn time")):
        a = statistics.median(r[key] for r in follow_off)
        b = statistics.median(r[key] for r in follow_on)
        print(
            f"follow-ups, median {label}: {b:.2f} s with snapshots vs {a:.2f} s without (baseline); "
            f"ratio {b / a:.2f}"
        )
    share = (
        sum(r["cached"] for r in follow_on) / sum(r["prompt"] for r in follow_on),
        sum(r["cached"] for r in follow_off) / sum(r["prompt"] for r in follow_off),
    )
    print(
        f"follow-ups, share of the answer prompt found cached: {share[0]:.0%} with snapshots vs "
        f"{share[1]:.0%} without"
    )
    differ = [(a, b) for a, b in zip(follow_off, follow_on, strict=True) if a["answer"] != b["answer"]]
    print(f"follow-up answers that differ between the runs: {len(differ)} of {len(follow_on)}")
    for a, b in differ[:1]:
        at = next(
            (i for i, (x, y) in enumerate(zip(a["answer"], b["answer"], strict=False)) if x != y),
            min(len(a["answer"]), len(b["answer"])),
        )
        print(
            f"  turn {a['turn']}, from character {at}: off {a['answer'][at : at + 80]!r}\n"
            f"{'':>{len(str(a['turn'])) + 24}}on  {b['answer'][at : at + 80]!r}"
        )
    out = Path("runs/bench_chat_cache.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
