"""Web page benchmark: the time from pressing Enter on the page to the first token shown, against the
time to the first token of the same request sent straight to the API.

The server is ``groundglass serve`` (open mode) over a local index of Wikipedia summaries with the
tiny SmolLM2 model; the page runs in Debian's chromium, driven by Playwright. Each question is first
sent once unmeasured, so that llama.cpp's prompt cache holds it for both sides; then the page and the
API are asked in turn (which goes first alternates), the API with the exact body the page sent
(captured from the browser), streamed with httpx.

- page: from the Enter key's event time to the moment the first words are in the page's DOM (the
  page records it in ``data-first-token-ms``, on the browser's clock);
- API: from sending the request to the first chunk with content.

It prints both medians, the difference (what the page adds) and the ratio, and the page's own work
measured inside the browser: Enter -> request sent, plus first words received -> on screen.

    .venv/bin/python -m bench.bench_page [--docs 50] [--rounds 4]

Figures depend on what else runs on the machine: on a shared 2-core box, run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# one llama.cpp thread: on a shared machine its threads spin-wait on each other (see tests/conftest.py)
os.environ.setdefault("GROUNDGLASS_LLM_THREADS", "1")

from bench.bench_server import QUESTIONS, build_home, serve

CHROMIUM = os.environ.get("GROUNDGLASS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def api_ttft(base: str, body: dict[str, Any]) -> float:
    """Seconds from sending ``body`` (streamed) to the first chunk that carries text."""
    import httpx

    started = time.perf_counter()
    first = None
    with httpx.stream("POST", base + "/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():  # read to the end, as the page does
            if first is not None or not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            if json.loads(line[5:])["choices"][0]["delta"].get("content", "").strip():
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("the stream ended without any text")
    return first


class PageSide:
    def __init__(self, browser: Any, base: str) -> None:
        self.page = browser.new_page()
        self.page.goto(base + "/")
        self.page.wait_for_selector("body[data-ready=true]")
        self.bodies: list[dict[str, Any]] = []
        self.own: list[float] = []  # ms
        self.page.on(
            "request",
            lambda r: self.bodies.append(r.post_data_json) if r.url.endswith("/chat/completions") else None,
        )

    def ask(self, question: str) -> tuple[float, dict[str, Any]]:
        """Seconds from Enter to the first words on the page, and the body the page sent. The page's own
        part (Enter -> request sent, first words received -> on screen) goes to ``self.own``."""
        self.page.click("#new-thread")  # one question per thread: the same request as the API's
        count = self.page.locator("article.turn").count()
        self.page.fill("#question", question)
        self.page.press("#question", "Enter")
        self.page.wait_for_selector(f"article.turn:nth-of-type({count + 1})[data-done]", timeout=600_000)
        turn = self.page.locator("article.turn").nth(count)
        if turn.get_attribute("data-done") != "answered":
            raise RuntimeError(f"the page did not answer: {turn.inner_text()}")
        names = ("request", "first-chunk", "first-token")
        ms = {name: float(turn.get_attribute(f"data-{name}-ms")) for name in names}
        self.own.append(ms["request"] + ms["first-token"] - ms["first-chunk"])
        return ms["first-token"] / 1000, self.bodies[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=50, help="Wikipedia summaries in the index")
    ap.add_argument("--max-tokens", type=int, default=16, help="answer length")
    ap.add_argument("--rounds", type=int, default=4, help="questions, each asked on the page and the API")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    home = build_home(args.docs, args.max_tokens)
    with (home / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f"\n[server.models.sonar]\nmax_tokens = {args.max_tokens}\n")
    proc, base = serve(home)
    page_s: list[float] = []
    api_s: list[float] = []
    own: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            side = PageSide(browser, base)
            _, body = side.ask(QUESTIONS[-1])  # warm: model, embedder, index, the browser's page
            api_ttft(base, body)
            for i in range(args.rounds):
                question = QUESTIONS[i % len(QUESTIONS)]
                request = {**body, "messages": [{"role": "user", "content": question}]}
                api_ttft(base, request)  # unmeasured: llama.cpp now caches this prompt for both sides
                if i % 2 == 0:
                    seconds, sent = side.ask(question)
                    page_s.append(seconds)
                    api_s.append(api_ttft(base, request))
                else:
                    api_s.append(api_ttft(base, request))
                    seconds, sent = side.ask(question)
                    page_s.append(seconds)
                assert sent == request, (sent, request)  # the very same request
            own = side.own[1:]  # not the warm-up question
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)
    page_ms, api_ms = statistics.median(page_s) * 1000, statistics.median(api_s) * 1000
    deltas = [(a - b) * 1000 for a, b in zip(page_s, api_s, strict=True)]
    print(f"time to first token, median of {args.rounds} questions (tiny model, {args.docs}-doc index)")
    each_page, each_api = [round(s * 1000) for s in page_s], [round(s * 1000) for s in api_s]
    print(f"  page (Enter -> first words on the page): {page_ms:8.1f} ms   {each_page}")
    print(f"  API  (request -> first text chunk):     {api_ms:8.1f} ms   {each_api}")
    print(
        f"  the page adds {page_ms - api_ms:+.1f} ms (median of per-question differences "
        f"{statistics.median(deltas):+.1f} ms); ratio page/API {page_ms / api_ms:.3f}"
    )
    print(
        f"  the page's own work (Enter -> request sent, + first words received -> on screen): median "
        f"{statistics.median(own):.1f} ms, max {max(own):.1f} ms  {[round(x, 1) for x in own]}"
    )


if __name__ == "__main__":
    main()
