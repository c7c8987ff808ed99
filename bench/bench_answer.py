"""Answer-side benchmark: time to first token and tokens/s of a full ``ask`` against raw llama-cpp-python.

For each question the engine answers it end to end (retrieval, relevance check, prompt, generation,
citation check, attribution); then a bare ``llama_cpp.Llama`` with the same model file, threads and
sampling answers the *same messages* (the engine's prompt over the sources it found). The ratio of
the two is what groundglass adds around llama.cpp. Both sides run one warm-up question first, so
both have the model loaded and the fixed system prompt in their KV cache, as in a long-running
server.

    .venv/bin/python -m bench.bench_answer [--model default] [--index default] [--max-tokens 128]

Needs the index (``groundglass demo`` builds ``default`` from the Wikipedia summaries). Figures depend
on what else runs on the machine: on a shared 2-core box, run it alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WARMUP = "Who painted the Mona Lisa?"
QUESTIONS = [
    "When was the Berlin Wall built, and why?",
    "How high is Mount Everest?",
    "Which Nobel Prizes did Marie Curie win?",
]


@dataclass
class Run:
    ttft_s: float  # request start -> first answer token
    gen_s: float  # first token -> last token
    tokens: int  # completion tokens
    total_s: float  # request start -> answer complete (for the engine: with citations checked)
    prompt_tokens: int = 0

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.gen_s if self.gen_s > 0 and self.tokens > 1 else 0.0


def model_path(spec: str, settings) -> Path:  # type: ignore[no-untyped-def]
    from groundglass.answer.llm.load import parse_model_spec
    from groundglass.assets import ensure_model

    parsed = parse_model_spec(spec)
    if parsed.kind == "embedded":
        return ensure_model(parsed.name, settings)
    if parsed.kind == "gguf" and parsed.path is not None:
        return parsed.path
    raise SystemExit("the raw baseline needs a GGUF model: use default, fast, tiny or a .gguf path")


def engine_run(engine, question: str, index: str, model: str, max_tokens: int):  # type: ignore[no-untyped-def]
    from groundglass.answer.events import Done, ErrorEvent, SourcesFound, Token
    from groundglass.answer.types import AskRequest

    request = AskRequest.from_question(question, index=index, model=model, max_tokens=max_tokens)
    t0 = time.perf_counter()
    first = last = 0.0
    sources = []
    for event in engine.stream(request):
        if isinstance(event, SourcesFound):
            sources = event.sources
        elif isinstance(event, Token):
            last = time.perf_counter()
            first = first or last
        elif isinstance(event, ErrorEvent):
            raise SystemExit(f"error: {event.message}")
        elif isinstance(event, Done):
            done = time.perf_counter()
            a = event.answer
            run = Run(
                ttft_s=first - t0,
                gen_s=last - first,
                tokens=a.usage.completion_tokens,
                total_s=done - t0,
                prompt_tokens=a.usage.prompt_tokens,
            )
            return run, sources, a
    raise SystemExit("the engine stream ended without an answer")


def raw_run(llama, messages, max_tokens: int, temperature: float) -> Run:  # type: ignore[no-untyped-def]
    chat = [{"role": m.role, "content": m.content} for m in messages]
    t0 = time.perf_counter()
    first = last = 0.0
    pieces = 0
    for chunk in llama.create_chat_completion(
        chat, max_tokens=max_tokens, temperature=temperature, top_p=0.95, repeat_penalty=1.1, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            last = time.perf_counter()
            first = first or last
            pieces += 1
    return Run(ttft_s=first - t0, gen_s=last - first, tokens=pieces, total_s=time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--index", default="default")
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows when piped

    from llama_cpp import Llama

    from groundglass.answer.engine import Engine
    from groundglass.answer.llm.llama_cpp_runtime import default_threads
    from groundglass.answer.prompt import build_messages
    from groundglass.config import load_settings
    from groundglass.log import configure_logging

    configure_logging()
    settings = load_settings()
    path = model_path(args.model, settings)
    engine = Engine(settings)
    threads = settings.llm.threads or default_threads()
    print(
        f"model {path.name}, index {args.index!r} under {settings.home}, {threads} threads, "
        f"max_tokens {args.max_tokens}, temperature {settings.llm.temperature}"
    )

    t = time.perf_counter()
    engine_run(engine, WARMUP, args.index, args.model, args.max_tokens)
    print(f"engine warm-up (loads model, embedder, index): {time.perf_counter() - t:.1f} s")
    llama = Llama(
        model_path=str(path),
        n_ctx=settings.llm.context_length,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    _, warm_sources, _ = engine_run(engine, WARMUP, args.index, args.model, args.max_tokens)
    raw_run(llama, build_messages(WARMUP, warm_sources), args.max_tokens, settings.llm.temperature)

    rows: list[tuple[str, Run, Run]] = []
    for q in QUESTIONS:
        ours, sources, answer = engine_run(engine, q, args.index, args.model, args.max_tokens)
        raw = raw_run(llama, build_messages(q, sources), args.max_tokens, settings.llm.temperature)
        rows.append((q, ours, raw))
        print(
            f"\nQ: {q}\n   {len(sources)} sources, {ours.prompt_tokens} prompt tokens; "
            f"answer: {answer.content[:160]!r}"
        )

    print(
        f"\n{'question':44} {'TTFT ask':>9} {'TTFT raw':>9} {'ratio':>6} {'tok/s ask':>10} "
        f"{'tok/s raw':>10} {'ratio':>6} {'total ask':>10}"
    )
    for q, ours, raw in rows:
        print(
            f"{q[:44]:44} {ours.ttft_s:8.2f}s {raw.ttft_s:8.2f}s {ours.ttft_s / raw.ttft_s:6.2f} "
            f"{ours.tokens_per_s:10.1f} {raw.tokens_per_s:10.1f} "
            f"{ours.tokens_per_s / raw.tokens_per_s:6.2f} {ours.total_s:9.2f}s"
        )
    med = statistics.median
    ttft_ours, ttft_raw = med(r[1].ttft_s for r in rows), med(r[2].ttft_s for r in rows)
    tps_ours, tps_raw = med(r[1].tokens_per_s for r in rows), med(r[2].tokens_per_s for r in rows)
    print(
        f"\nmedian time to first token: ask {ttft_ours:.2f} s, raw llama-cpp-python {ttft_raw:.2f} s, "
        f"ratio {ttft_ours / ttft_raw:.2f} (overhead {ttft_ours - ttft_raw:+.2f} s)"
    )
    print(
        f"median generation speed:    ask {tps_ours:.1f} tok/s, raw llama-cpp-python {tps_raw:.1f} tok/s, "
        f"ratio {tps_ours / tps_raw:.2f}"
    )


if __name__ == "__main__":
    main()
