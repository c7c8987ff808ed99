"""Time to first token of a web answer through ``groundglass serve``, beside a naive pipeline streaming
on the same model, in the same run.

The question: once the model is loaded, how long does a streaming client wait before the answer's first
words? groundglass shows a sentence only once it has passed its check (its values are in the sources it
cites), so its first token is the end of its first checked sentence; the naive pipeline
(:mod:`bench.naive_rag`: top pages, 800-character chunks, keyword overlap, 4 chunks) streams the model's
raw tokens as they come. Both search the same loopback SearXNG-speaking copy of Python's manual
(Debian's ``python3.11-doc``), both keep their model loaded, and the questions alternate between them so
a change in the machine's load hits both alike.

- **groundglass**: ``groundglass serve`` in its own process, a web model preset; each question is one
  streamed ``chat.completions`` through the official ``openai`` client. One warm-up question first.
- **naive**: in this process, llama-cpp-python on the same GGUF file with the same threads,
  ``create_chat_completion(stream=True)`` after search, read and keyword ranking.

    .venv/bin/python -m bench.bench_ttft [--questions 6] [--model default] [--threads N]

It prints p50 time to first token and p50 total for both, and their ratios. The goal for groundglass:
time to first token p50 <= 6 s on a 2-core machine with the default model.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench import naive_rag
from bench.bench_server import serve
from bench.docqa_data import PYTHON, copy_corpus, interleave, load
from bench.docqa_site import DocSite
from bench.eval_docs import write_config

GOAL_S = 6.0


def write_home(home: Path, searxng_url: str, model: str, threads: int | None) -> None:
    """A fresh home whose models folder is the user's (the default model is not assembled again)."""
    from groundglass.config import load_settings

    user_models = load_settings(None).models_dir
    if user_models.is_dir():
        (home / "models").symlink_to(user_models, target_is_directory=True)
    server = ["[server]", "open = true", "warm_up = true", "[server.models.docs-web]", 'source = "web"']
    write_config(home / "config.toml", searxng_url, threads, model=model, extra=server)


def ours(client: Any, question: str) -> tuple[float, float, str]:
    """(seconds to the first content, seconds in all, the text) of one streamed answer."""
    started = time.perf_counter()
    first = None
    text = ""
    for chunk in client.chat.completions.create(
        model="docs-web", stream=True, messages=[{"role": "user", "content": question}]
    ):
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta and first is None:
            first = time.perf_counter() - started
        text += delta or ""
    total = time.perf_counter() - started
    return (first if first is not None else total), total, text


def naive(llm: Any, searxng_url: str, question: str) -> tuple[float, float, str]:
    started = time.perf_counter()
    pages = naive_rag.read_web(naive_rag.search_web(searxng_url, question))
    picked = naive_rag.best_chunks(question, pages)
    first = None
    text = ""
    for chunk in llm.create_chat_completion(
        messages=naive_rag.prompt(question, picked),
        max_tokens=naive_rag.MAX_TOKENS,
        temperature=0.0,
        stream=True,
    ):
        delta = chunk["choices"][0]["delta"].get("content")
        if delta and first is None:
            first = time.perf_counter() - started
        text += delta or ""
    total = time.perf_counter() - started
    return (first if first is not None else total), total, text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=6, help="single-page questions timed (after 1 warm-up)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads for both")
    ap.add_argument("--work", type=Path, default=Path("runs/eval_docs"), help="copy of the pages")
    args = ap.parse_args(argv)
    if not PYTHON.root.is_dir():
        print(PYTHON.install_hint(), file=sys.stderr)
        return 2
    import openai

    html = (args.work / "html").resolve()
    site = DocSite(html, copy_corpus(html))
    questions = [q.question for q in interleave(load()) if q.kind == "single"][: args.questions + 1]
    home = Path(tempfile.mkdtemp(prefix="gg-bench-ttft-"))
    write_home(home, site.searxng_url, args.model, args.threads)
    # a timeout's SIGTERM ends the run through ``finally``, so the server it started goes with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    proc, base = serve(home)
    try:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=600)
        print(f"server up at {base}; loading the naive pipeline's model ...", flush=True)
        llm = naive_rag.load_model(args.model, args.threads, home / "config.toml")
        print("warming up both (the server's first answer also loads the embedder) ...", flush=True)
        ours(client, questions[0])
        naive(llm, site.searxng_url, questions[0])
        print(f"timing {len(questions) - 1} questions, alternating:", flush=True)
        rows: list[tuple[str, float, float, float, float]] = []
        for q in questions[1:]:
            o_first, o_total, o_text = ours(client, q)
            n_first, n_total, _ = naive(llm, site.searxng_url, q)
            rows.append((q, o_first, o_total, n_first, n_total))
            print(
                f"  ours {o_first:5.1f}/{o_total:5.1f} s | naive {n_first:5.1f}/{n_total:5.1f} s | {q[:60]}"
            )
            print(f"       {' '.join(o_text.split())[:110]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        site.close()
    ttft_o = statistics.median(r[1] for r in rows)
    ttft_n = statistics.median(r[3] for r in rows)
    total_o = statistics.median(r[2] for r in rows)
    total_n = statistics.median(r[4] for r in rows)
    busy = os.getloadavg()[0]
    note = " (not idle: figures inflated)" if busy > 1.5 else ""
    print(
        f"\ntime to first token, web answers, model {args.model}, {os.cpu_count()} CPU cores, "
        f"{len(rows)} questions, load average {busy:.1f}{note}"
    )
    print(f"{'':12} {'groundglass':>12} {'naive':>8} {'ratio':>7}")
    print(
        f"{'TTFT p50':12} {ttft_o:11.1f}s {ttft_n:7.1f}s {ttft_o / ttft_n:6.2f}x   (goal: ours <= {GOAL_S} s)"
    )
    print(f"{'total p50':12} {total_o:11.1f}s {total_n:7.1f}s {total_o / total_n:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
