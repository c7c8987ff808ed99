"""Server benchmark: what the HTTP API adds around the answer engine, at concurrency 1, 8 and 32.

The same questions are answered two ways, with the fastest real configuration (a local index of
Wikipedia summaries and the tiny SmolLM2 model, short answers) so the server's own costs show:

- **in-process**: ``Engine(settings).answer(...)`` called from C threads in this process;
- **server**: ``groundglass serve --open`` in its own process, C concurrent HTTP clients sending
  non-streaming ``POST /chat/completions`` (auth lookup, rate limit, validation, the engine in a
  worker thread, JSON, the ledger write).

It prints requests/s and p50/p95 latency for both and their ratio. The two are measured in
interleaved rounds so a change in the machine's load hits both alike. The server also reports, per
request, how long the request queued for the engine and how long the engine ran (``Server-Timing``
header); latency minus those is the server's own overhead, a figure that does not depend on how fast
the model is. ``GET /v1/models`` (no engine at all) gives the HTTP stack's floor.

    .venv/bin/python -m bench.bench_server [--docs 200] [--max-tokens 8] [--rounds 3]

Figures depend on what else runs on the machine: on a shared 2-core box, run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUESTIONS = [
    "When was the Berlin Wall built?",
    "How high is Mount Everest?",
    "Which prizes did Marie Curie win?",
    "Who painted the Mona Lisa?",
    "What is photosynthesis?",
    "Where does the Amazon River flow?",
]
# Their answer pages, so every question goes through retrieval AND the model (none is declined early).
TITLES = ["Berlin Wall", "Mount Everest", "Marie Curie", "Mona Lisa", "Photosynthesis", "Amazon River"]
LEVELS = (1, 8, 32)


def build_home(docs: int, max_tokens: int) -> Path:
    from rich.progress import Progress

    from groundglass.answer.index.builtin import wikipedia_documents
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import load_settings

    home = Path(tempfile.mkdtemp(prefix="gg-bench-server-"))
    (home / "config.toml").write_text(
        f'home = "{home}"\n[llm]\nmodel = "tiny"\nmax_tokens = {max_tokens}\n[retrieval]\nindex = "bench"\n'
        "[server]\nopen = true\ndefault_rpm = 1000000\ndefault_tpm = 1000000000\nwarm_up = true\n",
        encoding="utf-8",
    )
    settings = load_settings(home / "config.toml", home=str(home))
    with Progress(transient=True) as progress:
        progress.add_task(f"indexing {docs} Wikipedia summaries", total=None)
        index = LocalIndex.open(settings, "bench", create=True)
        add_documents(index, wikipedia_documents(titles=TITLES))
        add_documents(index, wikipedia_documents(limit=docs))
        index.close()
    return home


@dataclass
class Side:
    """Latencies and busy time of one way of answering, at one concurrency."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    overheads: list[float] = field(default_factory=list)  # server only: latency - queue - engine

    def figures(self) -> tuple[float, float, float]:
        return (
            len(self.latencies) / self.wall,
            pct(self.latencies, 0.5) * 1000,
            pct(self.latencies, 0.95) * 1000,
        )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def engine_seconds(server_timing: str) -> float:
    """queue + engine time from a ``Server-Timing: queue;dur=1.2, engine;dur=345.6`` header, in seconds."""
    total = 0.0
    for part in server_timing.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name in ("queue", "engine") and dur:
            total += float(dur) / 1000
    return total


class InProcess:
    def __init__(self, home: Path, max_tokens: int) -> None:
        from groundglass.answer.engine import Engine
        from groundglass.config import load_settings

        self.engine = Engine(load_settings(home / "config.toml", home=str(home)))
        self.max_tokens = max_tokens

    def one(self, i: int) -> float:
        from groundglass.answer.types import AskRequest

        started = time.perf_counter()
        self.engine.answer(
            AskRequest.from_question(QUESTIONS[i % len(QUESTIONS)], max_tokens=self.max_tokens)
        )
        return time.perf_counter() - started

    def batch(self, c: int, side: Side) -> None:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=c) as pool:
            side.latencies += list(pool.map(self.one, range(c)))
        side.wall += time.perf_counter() - started


class OverHTTP:
    def __init__(self, base: str, max_tokens: int) -> None:
        import httpx

        self.base = base
        self.max_tokens = max_tokens
        self.loop = asyncio.new_event_loop()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.client = httpx.AsyncClient(timeout=900, limits=limits)

    async def _chat(self, i: int) -> tuple[float, float]:
        body = {
            "model": "sonar",
            "max_tokens": self.max_tokens,
            "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
        }
        started = time.perf_counter()
        r = await self.client.post(self.base + "/chat/completions", json=body)
        r.raise_for_status()
        latency = time.perf_counter() - started
        return latency, latency - engine_seconds(r.headers.get("server-timing", ""))

    async def _get(self, path: str) -> float:
        started = time.perf_counter()
        (await self.client.get(self.base + path)).raise_for_status()
        return time.perf_counter() - started

    def batch(self, c: int, side: Side) -> None:
        async def run() -> list[tuple[float, float]]:
            return list(await asyncio.gather(*(self._chat(i) for i in range(c))))

        started = time.perf_counter()
        results = self.loop.run_until_complete(run())
        side.wall += time.perf_counter() - started
        side.latencies += [r[0] for r in results]
        side.overheads += [r[1] for r in results]

    def floor(self, c: int, n: int) -> Side:
        """GET /v1/models: the HTTP stack, auth and JSON with no engine behind them."""

        async def run() -> list[float]:
            gate = asyncio.Semaphore(c)

            async def one() -> float:
                async with gate:
                    return await self._get("/v1/models")

            return list(await asyncio.gather(*(one() for _ in range(n))))

        side = Side()
        started = time.perf_counter()
        side.latencies = self.loop.run_until_complete(run())
        side.wall = time.perf_counter() - started
        return side

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    exe = Path(sys.executable).parent / "groundglass"
    env = {**os.environ, "GROUNDGLASS_HOME": str(home), "GROUNDGLASS_CONFIG": str(home / "config.toml")}
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start within 180 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=200, help="Wikipedia summaries in the index")
    ap.add_argument(
        "--max-tokens", type=int, default=8, help="answer length (short: the model is not measured)"
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of C requests per concurrency C"
    )
    args = ap.parse_args()
    from groundglass.log import configure_logging

    configure_logging("WARNING")

    home = build_home(args.docs, args.max_tokens)
    inproc = InProcess(home, args.max_tokens)
    for i in range(2):
        inproc.one(i)  # warm: model, embedder, index, llama.cpp's prompt cache
    results: dict[int, tuple[Side, Side, Side]] = {}
    proc, base = serve(home)
    http = OverHTTP(base, args.max_tokens)
    try:
        warm = Side()
        http.batch(2, warm)  # the server warms up the same way
        for c in LEVELS:
            a, b = Side(), Side()
            # Interleave the two ways round by round, so a change in the machine's load hits both alike.
            for _ in range(args.rounds):
                inproc.batch(c, a)
                http.batch(c, b)
            results[c] = (a, b, http.floor(c, 50 * c))
    finally:
        http.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)

    print(
        f"server overhead: tiny model (SmolLM2-135M), local index of {args.docs} Wikipedia summaries, "
        f"max_tokens {args.max_tokens}, {os.cpu_count()} CPU cores, client and server on one machine, "
        f"{args.rounds} interleaved rounds of C requests per concurrency C"
    )
    print(
        f"{'conc':>4} | {'in-process rps':>14} {'p50 ms':>7} {'p95 ms':>7} | {'server rps':>10} "
        f"{'p50 ms':>7} {'p95 ms':>7} | {'rps ratio':>9} | {'overhead p50 ms':>15} {'p95 ms':>7} | "
        f"{'GET /v1/models rps':>18} {'p50 ms':>7}"
    )
    for c in LEVELS:
        a, b, floor = results[c]
        (ir, ip50, ip95), (sr, sp50, sp95), (fr, fp50, _) = a.figures(), b.figures(), floor.figures()
        op50, op95 = pct(b.overheads, 0.5) * 1000, pct(b.overheads, 0.95) * 1000
        print(
            f"{c:>4} | {ir:>14.2f} {ip50:>7.0f} {ip95:>7.0f} | {sr:>10.2f} {sp50:>7.0f} {sp95:>7.0f} | "
            f"{sr / ir:>9.2f} | {op50:>15.1f} {op95:>7.1f} | {fr:>18.0f} {fp50:>7.1f}"
        )
    print(
        "rps ratio = server / in-process (1.00 = the server costs nothing). overhead = each request's "
        "latency minus the queue and engine time the server reports in its Server-Timing header: what "
        "the HTTP layer, keys, limits, validation, JSON and the ledger add."
    )


if __name__ == "__main__":
    main()
