"""Soak: many web answers through the CLI and through a real server; crashes, errors, latency, memory, ledger.

1. CLI: N runs of ``groundglass ask --json --source web`` (one process each, ``PYTHONFAULTHANDLER=1``)
   against a loopback SearXNG whose results are long pages on a loopback site. A run killed by a signal
   is a crash: its signal and the faulthandler stacks from stderr are reported.
2. Server: one ``groundglass serve`` (keys on, a web preset), N questions at each concurrency level:
   plain and streamed answers, clients that disconnect mid-stream, and two-turn conversations (the
   follow-up reuses the first turn's KV cells). Reports statuses, p50/p95 latency, the server's RSS at
   start, after warm-up and at the end (with its slope per 100 answers), whether the server survived
   (and exited cleanly on SIGTERM), and whether the usage ledger holds exactly one row per request.

    .venv/bin/python -m bench.soak --model tiny --cli 100 --server 100 --concurrency 1,4,8 --minutes 60
    make soak SOAK_ARGS="--model default --cli 10 --server 0"

Stops starting work after ``--minutes`` and always stops the server. Exits 1 when anything failed:
a crash, a response that is not 2xx, a ledger mismatch, or RSS growth after warm-up above ``--max-growth``.
Timings depend on what else runs on the machine (on a shared 2-core box they are not benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "answer"))  # the loopback servers live with the tests

QUESTIONS = [
    "Who built the Eddystone lighthouse, and when?",
    "How far can the light of the lighthouse on Rock {n} be seen?",
    "What did lighthouse keepers do during a storm?",
    "How does a Fresnel lens concentrate the light of a lighthouse?",
    "When was the lighthouse on Rock {n} automated?",
    "Why were fog signals used beside lighthouses?",
    "Which lighthouse on the survey list has a red light?",
    "How tall is the tower on Rock {n}?",
]
FOLLOW_UPS = ["And who designed it?", "When was it built?", "How far can it be seen?"]
SENTENCES = [
    "The lighthouse on Rock {n} was first lit in {year} and shows a {colour} light seen {miles} miles away.",
    "Its tower of dovetailed granite stands {height} metres tall and was designed by engineer {name}.",
    "Keepers on Rock {n} trimmed the wicks, polished the Fresnel lens and wound the clockwork every night.",
    "In {auto} the station on Rock {n} was automated and its last keepers left the rock.",
    "During storms the keepers kept a log of the weather, the passing ships and the state of the light.",
    "A Fresnel lens bends the light of a small lamp into a narrow beam with rings of glass prisms.",
    "Fog signals, first bells and guns and later sirens and diaphones, warned ships when fog hid the light.",
    "Supply boats reached Rock {n} only in calm weather, so the keepers stored food for many weeks.",
]
NAMES = [
    "John Smeaton",
    "James Douglass",
    "Robert Stevenson",
    "Alan Stevenson",
    "Henry Winstanley",
    "Thomas Rudyard",
    "James Walker",
    "Nicholas Douglass",
]
COLOURS = ["white", "red", "green", "white and red"]


# --- the loopback web: a SearXNG endpoint and a site of long pages ----------------------------------------


def long_page(n: int, paragraphs: int) -> str:
    """A long article about Rock ``n``: navigation, a cookie banner and ``paragraphs`` paragraphs."""
    rng = random.Random(n)
    values = {
        "n": n,
        "year": 1750 + n % 150,
        "colour": COLOURS[n % len(COLOURS)],
        "miles": 10 + n % 17,
        "height": 20 + n % 30,
        "name": NAMES[n % len(NAMES)],
        "auto": 1960 + n % 40,
    }
    body = []
    for p in range(paragraphs):
        picked = rng.sample(SENTENCES, 4)
        body.append("<p>" + " ".join(s.format(**values) for s in picked) + f" (Survey note {n}.{p}.)</p>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Rock {n} lighthouse - survey of lighthouses</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        "<div class='cookie'>We use cookies. Accept?</div>"
        f"<article><h1>The lighthouse on Rock {n}</h1>{''.join(body)}</article>"
        "<footer>Copyright the survey of lighthouses</footer></body></html>"
    )


def start_web(pages: int, paragraphs: int, results: int) -> Any:
    """The loopback site + SearXNG API in this process (daemon threads); returns the server."""
    from loopback_web import LoopbackServer, _Handler

    class Handler(_Handler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            self.owner.count(parts.path.split("/")[1])
            if parts.path.startswith("/page/"):
                n = int(parts.path.rsplit("/", 1)[1])
                self.send(200, long_page(n, paragraphs).encode(), "text/html; charset=utf-8")
            elif parts.path == "/searxng/search":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                q = query.get("q", "")
                rng = random.Random(q)
                picks = rng.sample(range(pages), min(results, pages))
                hits = [
                    {
                        "url": f"{self.owner.base_url}/page/{n}",
                        "title": f"Rock {n} lighthouse",
                        "content": f"Survey notes on the lighthouse on Rock {n}.",
                        "engine": "loopback",
                        "engines": ["loopback"],
                        "score": 1.0 / (i + 1),
                        "category": "general",
                        "publishedDate": "2024-05-10T09:30:00",
                    }
                    for i, n in enumerate(picks)
                ]
                self.send(
                    200,
                    json.dumps({"query": q, "number_of_results": len(hits), "results": hits}).encode(),
                    "application/json",
                )
            else:
                self.send(404, b"not found", "text/plain")

    return LoopbackServer(Handler)


def write_home(home: Path, web_url: str, model: str, max_tokens: int, threads: int) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(
        f"""home = "{home}"

[llm]
model = "{model}"
max_tokens = {max_tokens}
threads = {threads}

[search]
providers = ["searxng"]
cache_ttl_s = 0
timeout_s = 60.0

[search.searxng]
base_url = "{web_url}/searxng"

[fetch]
allowed_networks = ["127.0.0.1/32"]
per_host_delay_s = 0.0
per_host_concurrency = 8
timeout_s = 30.0

[server.models.soak]
source = "web"
max_tokens = {max_tokens}
description = "web answers for the soak"
""",
        encoding="utf-8",
    )
    return config


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GROUNDGLASS_MODEL"}
    env.update(
        {
            "GROUNDGLASS_HOME": str(home),
            "GROUNDGLASS_CONFIG": str(home / "config.toml"),
            "PYTHONFAULTHANDLER": "1",
            "HF_HUB_OFFLINE": "1",
            "GROUNDGLASS_LOG_LEVEL": "warning",
        }
    )
    return env


def groundglass() -> list[str]:
    script = Path(sys.executable).parent / "groundglass"
    return [str(script)] if script.exists() else [sys.executable, "-m", "groundglass.cli"]


def question(i: int) -> str:
    return QUESTIONS[i % len(QUESTIONS)].format(n=i % 97)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit {rc}"


def fault_stack(text: str, limit: int = 2500) -> str:
    """The faulthandler report in ``text`` (from 'Fatal Python error' on), else its tail."""
    at = text.find("Fatal Python error")
    return text[at : at + limit] if at >= 0 else text[-limit:]


# --- 1. the CLI ---------------------------------------------------------------------------------------------


@dataclass
class CliReport:
    runs: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    peak_rss: list[tuple[int, int]] = field(default_factory=list)  # (run, the process's peak RSS in bytes)


def run_measured(
    cmd: list[str], home: Path, timeout_s: float
) -> tuple[subprocess.CompletedProcess[str], int]:
    """``cmd`` run to its end, and its peak resident memory (bytes): the kernel's rusage of that child,
    read by reaping it with ``wait4`` (``subprocess.run`` reaps it without keeping the figure)."""
    import threading

    proc = subprocess.Popen(
        cmd, env=child_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda n=name, f=f: out.__setitem__(n, f.read()), daemon=True)
        for name, f in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            for reader in readers:
                reader.join(timeout=10)
            raise subprocess.TimeoutExpired(cmd, timeout_s, out.get("stdout"), out.get("stderr"))
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    for reader in readers:
        reader.join(timeout=30)
    done = subprocess.CompletedProcess(cmd, proc.returncode, out.get("stdout", ""), out.get("stderr", ""))
    return done, usage.ru_maxrss * 1024  # Linux reports kilobytes


def run_cli(home: Path, n: int, deadline: float, timeout_s: float) -> CliReport:
    report = CliReport()
    for i in range(n):
        if time.monotonic() > deadline:
            print(f"  cli: time is up after {i} runs", flush=True)
            break
        q = question(i)
        started = time.perf_counter()
        try:
            command = [*groundglass(), "ask", "--json", "--source", "web", q]
            proc, peak = run_measured(command, home, timeout_s)
        except subprocess.TimeoutExpired as exc:
            report.runs += 1
            report.failures.append(
                {
                    "run": i,
                    "question": q,
                    "error": f"timed out after {timeout_s} s",
                    "stderr": fault_stack(str(exc.stderr or "")),
                }
            )
            continue
        elapsed = time.perf_counter() - started
        report.runs += 1
        report.peak_rss.append((i, peak))
        if proc.returncode < 0:
            report.crashes.append(
                {
                    "run": i,
                    "question": q,
                    "exit": describe_exit(proc.returncode),
                    "after_s": round(elapsed, 1),
                    "stack": fault_stack(proc.stderr),
                }
            )
            print(f"  cli run {i}: CRASH {describe_exit(proc.returncode)} after {elapsed:.1f} s", flush=True)
            continue
        try:
            body = json.loads(proc.stdout)
            content = body["choices"][0]["message"]["content"]
            good = proc.returncode == 0 and isinstance(content, str) and bool(content.strip())
        except (ValueError, KeyError, IndexError, TypeError):
            good = False
        if good:
            report.ok += 1
            report.latencies.append(elapsed)
        else:
            report.failures.append(
                {
                    "run": i,
                    "question": q,
                    "exit": describe_exit(proc.returncode),
                    "stdout": proc.stdout[-500:],
                    "stderr": proc.stderr[-1500:],
                }
            )
        print(
            f"  cli run {i + 1}/{n}: {'ok' if good else 'FAILED'} in {elapsed:.0f} s, peak RSS "
            f"{peak / 2**20:.0f} MB ({report.ok} ok, {len(report.crashes)} crashes so far)",
            flush=True,
        )
    return report


# --- 2. the server ------------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (from /proc)."""
    total = 0
    pids = {pid}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@dataclass
class Result:
    kind: str
    concurrency: int
    status: int
    latency: float
    request_id: str | None
    error: str = ""
    answer: str = ""


@dataclass
class ServerReport:
    results: list[Result] = field(default_factory=list)
    rss: list[tuple[int, int]] = field(default_factory=list)  # (answers finished, bytes)
    crashed: str = ""
    stop_exit: str = ""
    ledger: dict[str, Any] = field(default_factory=dict)


class SoakServer:
    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = home / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300) -> None:
        import httpx

        out = open(self.log, "ab")  # noqa: SIM115 - the child keeps writing to it
        cmd = [*groundglass(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, env=child_env(self.home), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in {timeout} s: {self.tail()}")
            time.sleep(0.3)

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> str:
        """SIGTERM, then SIGKILL after 60 s; how it ended."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return describe_exit(self.proc.returncode)
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return describe_exit(self.proc.wait(timeout=60))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            return "did not stop in 60 s after SIGTERM (killed)"


def create_key(home: Path) -> str:
    proc = subprocess.run(
        [*groundglass(), "keys", "create", "--project", "soak", "--rpm", "1000000", "--tpm", "1000000000"],
        env=child_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"keys create failed: {proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


async def one_request(client: Any, kind: str, i: int, concurrency: int, timeout_s: float) -> list[Result]:
    """One client's work for request ``i``: a plain or streamed answer, a stream dropped after its first
    piece, or a two-turn conversation (two requests)."""
    q = question(i)
    body: dict[str, Any] = {"model": "soak", "messages": [{"role": "user", "content": q}]}
    if kind == "plain":
        return [await _post(client, body, kind, concurrency)]
    if kind == "stream":
        return [await _stream(client, body, kind, concurrency, drop=False)]
    if kind == "disconnect":
        return [await _stream(client, body, kind, concurrency, drop=True)]
    first = await _post(client, body, "conversation", concurrency)
    results = [first]
    if first.status == 200 and not first.error:
        follow = {
            "model": "soak",
            "messages": [
                {"role": "user", "content": q},
                {"role": "assistant", "content": first.answer},
                {"role": "user", "content": FOLLOW_UPS[i % len(FOLLOW_UPS)]},
            ],
        }
        results.append(await _post(client, follow, "follow-up", concurrency))
    return results


async def _post(client: Any, body: dict[str, Any], kind: str, concurrency: int) -> Result:
    started = time.perf_counter()
    try:
        r = await client.post("/chat/completions", json=body)
    except Exception as exc:
        return Result(kind, concurrency, 0, time.perf_counter() - started, None, repr(exc)[:300])
    elapsed = time.perf_counter() - started
    rid = r.headers.get("x-request-id")
    if r.status_code != 200:
        return Result(kind, concurrency, r.status_code, elapsed, rid, r.text[:300])
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Result(kind, concurrency, r.status_code, elapsed, rid, "no answer in a 200: " + r.text[:200])
    return Result(kind, concurrency, 200, elapsed, rid, answer=str(content))


async def _stream(client: Any, body: dict[str, Any], kind: str, concurrency: int, *, drop: bool) -> Result:
    started = time.perf_counter()
    rid = None
    try:
        async with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as r:
            rid = r.headers.get("x-request-id")
            if r.status_code != 200:
                text = (await r.aread()).decode("utf-8", "replace")[:300]
                return Result(kind, concurrency, r.status_code, time.perf_counter() - started, rid, text)
            done = False
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line.removeprefix("data: ")
                if data.strip() == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    return Result(
                        kind,
                        concurrency,
                        200,
                        time.perf_counter() - started,
                        rid,
                        "error in stream: " + data[:200],
                    )
                if drop and any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                    break  # leaving the block closes the connection mid-answer
            error = "" if done or drop else "the stream ended without [DONE]"
            return Result(kind, concurrency, 200, time.perf_counter() - started, rid, error)
    except Exception as exc:
        return Result(kind, concurrency, 0, time.perf_counter() - started, rid, repr(exc)[:300])


KINDS = ["plain", "stream", "plain", "disconnect", "stream", "conversation"]


async def drive(
    server: SoakServer,
    key: str,
    n: int,
    levels: list[int],
    deadline: float,
    timeout_s: float,
    report: ServerReport,
    warmup: int,
) -> None:
    import httpx

    finished = 0
    report.rss.append((0, rss_bytes(server.proc.pid)))  # type: ignore[union-attr]

    async def sample() -> None:
        while True:
            await asyncio.sleep(1.0)
            if server.alive():
                report.rss.append((finished, rss_bytes(server.proc.pid)))  # type: ignore[union-attr]

    sampler = asyncio.create_task(sample())
    headers = {"Authorization": f"Bearer {key}"}
    try:
        for level in levels:
            counter = iter(range(n))
            started = time.perf_counter()
            async with httpx.AsyncClient(
                base_url=server.base_url, headers=headers, timeout=timeout_s
            ) as client:

                async def worker(client: Any = client, level: int = level, counter: Any = counter) -> None:
                    nonlocal finished
                    for i in counter:
                        if time.monotonic() > deadline or not server.alive():
                            return
                        results = await one_request(client, KINDS[i % len(KINDS)], i, level, timeout_s)
                        report.results.extend(results)
                        finished += len(results)
                        if finished % 10 < len(results):
                            bad = sum(r.status != 200 for r in report.results)
                            print(f"  server: {finished} answers, {bad} not 200", flush=True)
                        if finished == warmup:
                            report.rss.append((finished, rss_bytes(server.proc.pid)))  # type: ignore[union-attr]

                await asyncio.gather(*(worker() for _ in range(level)))
            done = [r for r in report.results if r.concurrency == level]
            ok = sum(r.status == 200 and not r.error for r in done)
            print(
                f"  server, concurrency {level}: {len(done)} requests in "
                f"{time.perf_counter() - started:.0f} s, {ok} ok",
                flush=True,
            )
            if not server.alive():
                break
    finally:
        sampler.cancel()
    if server.alive():
        report.rss.append((finished, rss_bytes(server.proc.pid)))  # type: ignore[union-attr]


def settle(home: Path, results: list[Result], server: SoakServer, seconds: float) -> None:
    """Wait (up to ``seconds``) until the ledger has a row for every request: the server writes the row
    of a stream whose client went away when it notices, which can be after the client has left."""
    until = time.monotonic() + seconds
    while server.alive() and time.monotonic() < until:
        if check_ledger(home, results)["n_lost"] == 0:
            return
        time.sleep(2.0)


def check_ledger(home: Path, results: list[Result]) -> dict[str, Any]:
    """Exactly one ledger row per request that got a request id (none lost, none doubled)."""
    from collections import Counter

    from sqlalchemy import select

    from groundglass.config import load_settings
    from groundglass.server import db

    engine = db.get_engine(load_settings(home / "config.toml", home=str(home)))
    with engine.connect() as conn:
        rows = Counter(r.request_id for r in conn.execute(select(db.usage.c.request_id)))
    sent = Counter(r.request_id for r in results if r.request_id)
    lost = sorted(rid for rid in sent if rows[rid] == 0)
    doubled = sorted(rid for rid, k in rows.items() if k > 1)
    extra = sorted(rid for rid in rows if rid not in sent)
    return {
        "requests_with_id": sum(sent.values()),
        "rows": sum(rows.values()),
        "lost": lost[:10],
        "n_lost": len(lost),
        "doubled": doubled[:10],
        "n_doubled": len(doubled),
        "n_unknown": len(extra),
    }


def peak_rss_summary(peaks: list[tuple[int, int]]) -> dict[str, Any]:
    """Each CLI run is a new process: its peak RSS should not creep up from run to run (the caches
    on disk grow, the process should not). First and last tenth as medians, and the slope."""
    if not peaks:
        return {}
    mb = [p / 2**20 for _, p in peaks]
    tenth = max(1, len(mb) // 10)
    xs = [i for i, _ in peaks]
    slope = statistics.linear_regression(xs, mb).slope * 100 if len(set(xs)) > 1 else 0.0
    return {
        "first_runs_mb": round(statistics.median(mb[:tenth]), 1),
        "last_runs_mb": round(statistics.median(mb[-tenth:]), 1),
        "max_mb": round(max(mb), 1),
        "slope_mb_per_100_runs": round(slope, 2),
    }


def rss_summary(samples: list[tuple[int, int]], warmup: int) -> dict[str, Any]:
    if not samples:
        return {}
    start = samples[0][1]
    after = [s for s in samples if s[0] >= warmup]
    if len(after) < 2:
        return {
            "start_mb": round(start / 2**20, 1),
            "end_mb": round(samples[-1][1] / 2**20, 1),
            "answers_at_end": samples[-1][0],
            "warmup_answers": warmup,
            "growth_after_warmup_pct": None,
            "slope_mb_per_100_answers": None,
        }
    warm, end = after[0][1], samples[-1][1]
    xs = [s[0] for s in after]
    ys = [s[1] / 2**20 for s in after]
    slope = statistics.linear_regression(xs, ys).slope * 100 if len(set(xs)) > 1 else 0.0
    return {
        "start_mb": round(start / 2**20, 1),
        "after_warmup_mb": round(warm / 2**20, 1),
        "end_mb": round(end / 2**20, 1),
        "growth_after_warmup_pct": round(100 * (end - warm) / warm, 1),
        "slope_mb_per_100_answers": round(slope, 2),
        "answers_at_end": samples[-1][0],
        "warmup_answers": warmup,
        "samples_mb": _thinned(samples),
    }


def _thinned(samples: list[tuple[int, int]], points: int = 40) -> list[tuple[int, float]]:
    """(answers, MB) at about ``points`` evenly spaced moments, so the report shows the curve."""
    step = max(1, len(samples) // points)
    picked = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    return [(n, round(b / 2**20, 1)) for n, b in picked]


# --- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny | fast | default | a .gguf path (default tiny)")
    parser.add_argument("--cli", type=int, default=20, help="CLI web answers (default 20)")
    parser.add_argument("--server", type=int, default=40, help="server requests per concurrency level")
    parser.add_argument("--concurrency", default="1,4,8", help="server concurrency levels (default 1,4,8)")
    parser.add_argument("--minutes", type=float, default=30.0, help="stop starting work after this long")
    parser.add_argument("--max-tokens", type=int, default=64, help="answer length cap (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (default 1: a busy box)")
    parser.add_argument("--pages", type=int, default=300, help="distinct long pages on the site")
    parser.add_argument("--paragraphs", type=int, default=60, help="paragraphs per page (~45 words each)")
    parser.add_argument("--results", type=int, default=8, help="search results per query")
    parser.add_argument("--warmup", type=int, default=20, help="server answers before RSS growth is measured")
    parser.add_argument("--max-growth", type=float, default=10.0, help="allowed RSS growth (%%)")
    parser.add_argument("--timeout", type=float, default=600.0, help="per CLI run / HTTP request (s)")
    parser.add_argument(
        "--settle", type=float, default=120.0, help="longest wait for the ledger rows of dropped streams (s)"
    )
    parser.add_argument("--out", type=Path, help="write the report as JSON here too")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home (logs, ledger)")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    deadline = time.monotonic() + args.minutes * 60
    web = start_web(args.pages, args.paragraphs, args.results)
    home = Path(tempfile.mkdtemp(prefix="groundglass-soak-"))
    write_home(home, web.base_url, args.model, args.max_tokens, args.threads)
    print(
        f"soak: model {args.model}, home {home}, web {web.base_url}, {os.cpu_count()} CPUs (load "
        f"average {os.getloadavg()[0]:.1f}: other work on the machine slows every figure)",
        flush=True,
    )
    report: dict[str, Any] = {"model": args.model, "args": {k: str(v) for k, v in vars(args).items()}}
    failed = False

    if args.cli > 0:
        print(f"1. CLI: {args.cli} x groundglass ask --json --source web", flush=True)
        cli = run_cli(home, args.cli, deadline, args.timeout)
        report["cli"] = {
            "runs": cli.runs,
            "ok": cli.ok,
            "crashes": cli.crashes,
            "failures": cli.failures[:10],
            "n_failures": len(cli.failures),
            "p50_s": round(percentile(cli.latencies, 0.5), 2),
            "p95_s": round(percentile(cli.latencies, 0.95), 2),
            "peak_rss": peak_rss_summary(cli.peak_rss),
        }
        print(
            f"   {cli.runs} runs: {cli.ok} answered, {len(cli.crashes)} crashed, {len(cli.failures)} "
            f"failed; latency p50 {report['cli']['p50_s']} s, p95 {report['cli']['p95_s']} s; peak RSS per "
            f"run {report['cli']['peak_rss']}",
            flush=True,
        )
        for crash in cli.crashes:
            print(f"   CRASH run {crash['run']} ({crash['exit']}, {crash['after_s']} s):\n{crash['stack']}")
        for failure in cli.failures[:3]:
            print(f"   FAILED run {failure['run']}: {json.dumps(failure)[:800]}")
        failed |= bool(cli.crashes or cli.failures)

    if args.server > 0 and levels and time.monotonic() < deadline:
        from groundglass.answer.search import web as _web  # noqa: F401 - fail early if groundglass is missing

        print(f"2. server: {args.server} requests at each concurrency of {levels}", flush=True)
        port = _free_port()
        server = SoakServer(home, port)
        key = create_key(home)
        server.start()
        sr = ServerReport()
        try:
            asyncio.run(drive(server, key, args.server, levels, deadline, args.timeout, sr, args.warmup))
            settle(home, sr.results, server, args.settle)
        finally:
            if not server.alive():
                sr.crashed = f"{describe_exit(server.proc.returncode)}\n{fault_stack(server.tail(20000))}"  # type: ignore[union-attr]
            sr.stop_exit = server.stop()
        time.sleep(0.5)
        sr.ledger = check_ledger(home, sr.results)
        report["server"] = summarize_server(sr, levels, args.warmup)
        print_server(report["server"])
        growth = report["server"]["rss"].get("growth_after_warmup_pct") or 0.0
        # uvicorn re-raises SIGTERM after its graceful shutdown: "killed by SIGTERM" is a clean stop
        clean_stop = sr.stop_exit in ("exit 0", "killed by SIGTERM")
        failed |= bool(
            sr.crashed
            or report["server"]["non_2xx"]
            or report["server"]["errors"]
            or sr.ledger["n_lost"]
            or sr.ledger["n_doubled"]
            or growth > args.max_growth
            or not clean_stop
        )
    web.close()
    report["passed"] = not failed
    print(f"soak: {'PASSED' if not failed else 'FAILED'} (home {home})", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if not args.keep and not failed:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


def summarize_server(sr: ServerReport, levels: list[int], warmup: int) -> dict[str, Any]:
    by_level = {}
    for level in levels:
        rs = [r for r in sr.results if r.concurrency == level]
        complete = [r.latency for r in rs if r.status == 200 and not r.error and r.kind != "disconnect"]
        kinds = {k: sum(r.kind == k for r in rs) for k in sorted({r.kind for r in rs})}
        by_level[str(level)] = {
            "requests": len(rs),
            "p50_s": round(percentile(complete, 0.5), 2),
            "p95_s": round(percentile(complete, 0.95), 2),
            "kinds": kinds,
        }
    non_2xx = [r for r in sr.results if not 200 <= r.status < 300]
    errors = [r for r in sr.results if 200 <= r.status < 300 and r.error]
    return {
        "requests": len(sr.results),
        "by_concurrency": by_level,
        "non_2xx": [{"kind": r.kind, "status": r.status, "error": r.error} for r in non_2xx[:10]],
        "n_non_2xx": len(non_2xx),
        "errors": [{"kind": r.kind, "error": r.error} for r in errors[:10]],
        "crashed": sr.crashed,
        "stop": sr.stop_exit,
        "ledger": sr.ledger,
        "rss": rss_summary(sr.rss, warmup),
    }


def print_server(s: dict[str, Any]) -> None:
    for level, row in s["by_concurrency"].items():
        print(
            f"   concurrency {level}: {row['requests']} requests {row['kinds']}; latency of full answers "
            f"p50 {row['p50_s']} s, p95 {row['p95_s']} s"
        )
    print(
        f"   non-2xx: {s['n_non_2xx']} {s['non_2xx'][:3]}; 200s with an error: {len(s['errors'])} "
        f"{s['errors'][:3]}"
    )
    print(f"   server crashed: {s['crashed'] or 'no'}; on SIGTERM: {s['stop']}")
    led = s["ledger"]
    print(
        f"   ledger: {led['rows']} rows for {led['requests_with_id']} requests; lost {led['n_lost']}, "
        f"doubled {led['n_doubled']}, unknown {led['n_unknown']}"
    )
    rss = s["rss"]
    if rss and rss["growth_after_warmup_pct"] is None:
        print(
            f"   RSS: start {rss['start_mb']} MB, end {rss['end_mb']} MB after {rss['answers_at_end']} "
            f"answers (fewer than --warmup {rss['warmup_answers']}: no growth figure)"
        )
    elif rss:
        print(
            f"   RSS: start {rss['start_mb']} MB, after {rss['warmup_answers']} answers "
            f"{rss['after_warmup_mb']} MB, end {rss['end_mb']} MB after {rss['answers_at_end']} "
            f"({rss['growth_after_warmup_pct']:+}% after warm-up; slope "
            f"{rss['slope_mb_per_100_answers']:+} MB per 100 answers)"
        )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
