"""Web-search benchmark on the loopback site (``tests/data/web`` served on 127.0.0.1 by another process).

1. Page fetch throughput of the reader at concurrency 1, 4 and 16 (pages/s, fetch only and fetch +
   extraction), over N copies of the site's HTML pages; baseline: concurrency 1.
2. Extraction quality on the site's pages, where the main text is known (the page's ``<article>``
   / main element): trafilatura (what the reader uses) vs a plain tag-stripping baseline, as the
   share of main-text words kept and of boilerplate words removed.
3. Time to first token of a web-mode answer through the engine, with and without search overlapped
   with prompt processing (``llm.prefill_during_search``): "sequential" searches, reads and ranks,
   then starts the model on the whole prompt; "overlap" lets llama.cpp evaluate the prompt's known
   start (system message + question) while the search runs, then appends the sources.

    .venv/bin/python -m bench.bench_web [--pages 96] [--model tiny] [--skip-llm]

Figures depend on what else runs on the machine; on a shared 2-core box, run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "answer"))  # the loopback servers live with the tests

QUESTION = "Who built the Eddystone lighthouse, and when?"
_WORD = re.compile(r"\w+", re.UNICODE)


# --- servers in a child process (so the GIL of the server does not slow the client down) -------------


def _serve(queue: Any) -> None:
    from loopback_web import SearchAPI, WebSite

    site = WebSite()
    api = SearchAPI(site.base_url)
    queue.put((site.base_url, api.base_url))
    site.stop.wait()


def start_servers() -> tuple[mp.Process, str, Any]:
    from loopback_web import SearchAPI  # noqa: F401 - fail early if the module is missing

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(queue,), daemon=True)
    proc.start()
    site_url, api_url = queue.get(timeout=60)
    return proc, site_url, api_url


# --- 1. fetch throughput ------------------------------------------------------------------------------


def throughput(site_url: str, n_pages: int) -> None:
    from loopback_web import WEB_DIR

    from groundglass.answer.reader import PageReader
    from groundglass.config import FetchSettings

    names = sorted(p.name for p in WEB_DIR.glob("*.html"))
    urls = [f"{site_url}/copy/{i}/{names[i % len(names)]}" for i in range(n_pages)]

    async def run(concurrency: int, extract: bool) -> float:
        settings = FetchSettings(
            concurrency=concurrency,
            per_host_concurrency=concurrency,
            per_host_delay_s=0,
            allowed_networks=["127.0.0.1/32"],
            timeout_s=30,
        )
        async with PageReader(settings) as reader:
            started = time.perf_counter()
            if extract:
                _, failures = await reader.read_many(urls)
                assert not failures, failures[:2]
            else:
                sem = asyncio.Semaphore(concurrency)

                async def one(u: str) -> None:
                    async with sem:
                        await reader.fetch(u)

                await asyncio.gather(*(one(u) for u in urls))
            return len(urls) / (time.perf_counter() - started)

    print(
        f"\n1. Page fetch throughput: {n_pages} HTML pages (2.5-6 KB) from a loopback server in another "
        "process; per-host limits lifted"
    )
    print(
        f"   {'concurrency':>11} | {'fetch pages/s':>13} | {'x vs 1':>6} | {'fetch+extract pages/s':>21} | "
        f"{'x vs 1':>6}"
    )
    asyncio.run(run(1, True))  # warm-up: trafilatura and the client
    base_fetch = base_read = 0.0
    for c in (1, 4, 16):
        fetch = asyncio.run(run(c, False))
        read = asyncio.run(run(c, True))
        if c == 1:
            base_fetch, base_read = fetch, read
        print(
            f"   {c:>11} | {fetch:>13.1f} | {fetch / base_fetch:>6.2f} | {read:>21.1f} | "
            f"{read / base_read:>6.2f}"
        )


# --- 2. extraction quality ----------------------------------------------------------------------------

MAIN_XPATH = "//article | //*[@id='bodyContent'] | //*[@role='main']"


def ground_truth(html: str) -> tuple[Counter[str], Counter[str]]:
    """(main-text words, boilerplate words) of a page: main = its article/main element."""
    import lxml.html

    tree = lxml.html.fromstring(html)
    for bad in tree.xpath("//script | //style | //head"):
        bad.getparent().remove(bad)
    body = Counter(w.lower() for w in _WORD.findall(tree.text_content()))
    mains = tree.xpath(MAIN_XPATH)
    main = Counter(w.lower() for w in _WORD.findall(" ".join(m.text_content() for m in mains[:1])))
    return main, body - main


def strip_tags(html: str) -> str:
    """The baseline: drop scripts, styles and tags, keep every remaining text."""
    import html as html_lib

    html = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", html)
    return html_lib.unescape(re.sub(r"(?s)<[^>]+>", " ", html))


def trafilatura_text(html: str, url: str) -> str:
    from groundglass.answer.index.extract import html_document

    doc = html_document(html, url, "page")
    return f"{doc.title}\n{doc.text}"


def score(text: str, main: Counter[str], boiler: Counter[str]) -> tuple[float, float]:
    out = Counter(w.lower() for w in _WORD.findall(text))
    kept = sum(min(out[w], n) for w, n in main.items())
    leftover = sum((out - main).values())  # words beyond the main text: boilerplate that got through
    main_total, boiler_total = sum(main.values()), sum(boiler.values())
    return kept / main_total, 1 - min(leftover, boiler_total) / boiler_total


def extraction_quality() -> None:
    from loopback_web import WEB_DIR

    print("\n2. Extraction quality on the loopback pages (main text = the page's article/main element)")
    print(
        f"   {'page':<18} {'main w':>6} {'boiler w':>8} | {'trafilatura kept/removed':>24} | "
        f"{'tag-strip kept/removed':>22}"
    )
    rows = []
    for path in sorted(WEB_DIR.glob("*.html")):
        html = path.read_text(encoding="utf-8")
        main, boiler = ground_truth(html)
        t = score(trafilatura_text(html, f"http://127.0.0.1/{path.name}"), main, boiler)
        b = score(strip_tags(html), main, boiler)
        rows.append((t, b))
        print(
            f"   {path.name:<18} {sum(main.values()):>6} {sum(boiler.values()):>8} | "
            f"{t[0]:>11.1%} / {t[1]:>9.1%} | {b[0]:>10.1%} / {b[1]:>9.1%}"
        )
    tk = statistics.mean(r[0][0] for r in rows)
    tr = statistics.mean(r[0][1] for r in rows)
    bk = statistics.mean(r[1][0] for r in rows)
    br = statistics.mean(r[1][1] for r in rows)
    print(f"   {'mean':<33} | {tk:>11.1%} / {tr:>9.1%} | {bk:>10.1%} / {br:>9.1%}")
    print(
        f"   boilerplate removed: trafilatura {tr:.1%} vs baseline {br:.1%}; main text kept: "
        f"{tk:.1%} vs {bk:.1%} (ratio {tk / bk:.2f})"
    )


# --- 3. time to first token with and without overlap -----------------------------------------------------


def ttft(site_url: str, api_url: str, model: str, rounds: int) -> None:
    """Through the engine, as `groundglass ask --source web` runs: llm.prefill_during_search on and off."""
    from groundglass.answer.engine import Engine
    from groundglass.answer.events import SourcesFound, Token
    from groundglass.answer.types import AskRequest
    from groundglass.config import Settings

    eng = Engine(
        Settings.model_validate(
            {
                "home": os.environ.get("GROUNDGLASS_HOME") or str(Settings().home),  # where the models are
                "llm": {"model": model, "max_tokens": 8, "temperature": 0.0},
                "search": {
                    "providers": ["searxng"],
                    "cache_ttl_s": 0,
                    "searxng": {"base_url": f"{api_url}/searxng"},
                },
                "fetch": {"allowed_networks": ["127.0.0.1/32"], "per_host_delay_s": 0},
            }
        )
    )

    def first_token(overlap: bool, q: str) -> tuple[float, float, float]:
        """(time to first token, time to sources, total) for one web-mode question."""
        llm = eng.settings.llm.model_copy(update={"prefill_during_search": overlap})
        eng.settings = eng.settings.model_copy(update={"llm": llm})  # one engine: one loaded model
        started = time.perf_counter()
        searched = first = 0.0
        for event in eng.stream(AskRequest.from_question(q, search="web", search_context_size="low")):
            if isinstance(event, SourcesFound):
                searched = time.perf_counter() - started
            elif isinstance(event, Token) and not first:
                first = time.perf_counter() - started
        return first, searched, time.perf_counter() - started

    if not hasattr(eng.llm(), "warm"):
        print(f"\n3. TTFT: model {model!r} has no prefix cache to warm (an HTTP endpoint); skipped")
        return
    # a long question: the part of the prompt known before the sources are
    questions = [
        f"{QUESTION} Please answer from the reports of the Trinity House engineers, the "
        f"keepers' logbooks and the histories of Smeaton's and Douglass's towers ({i})"
        for i in range(rounds)
    ]  # distinct: no prefix left from the last round
    first_token(False, "warm-up question about the Eddystone lighthouse")  # loads embedder, trafilatura
    seq, ovl = [], []
    for q in questions:  # interleaved, so that a change in the machine's load hits both alike
        seq.append(first_token(False, q + " s"))
        ovl.append(first_token(True, q + " o"))
    s_med, o_med = statistics.median(x[0] for x in seq), statistics.median(x[0] for x in ovl)
    print(
        f"\n3. Time to first token, web mode through the engine, model {model!r}, {rounds} questions each, "
        "median"
    )
    s_search, o_search = statistics.median(x[1] for x in seq), statistics.median(x[1] for x in ovl)
    print(f"   sequential (prefill_during_search off): {s_med:.2f} s  (sources after {s_search:.2f} s)")
    print(f"   overlapped (prefill_during_search on):  {o_med:.2f} s  (sources after {o_search:.2f} s)")
    print(f"   ratio overlapped/sequential: {o_med / s_med:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=96, help="pages fetched per throughput run")
    parser.add_argument("--model", default="tiny", help="model spec for the TTFT part (default: tiny)")
    parser.add_argument("--rounds", type=int, default=3, help="questions per TTFT variant")
    parser.add_argument("--skip-llm", action="store_true", help="skip the TTFT part")
    args = parser.parse_args()
    proc, site_url, api_url = start_servers()
    try:
        throughput(site_url, args.pages)
        extraction_quality()
        if not args.skip_llm:
            ttft(site_url, api_url, args.model, args.rounds)
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
