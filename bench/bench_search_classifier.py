"""The search classifier (``enable_search_classifier``): ``python -m bench.bench_search_classifier``.

Accuracy: the labelled questions of ``bench/data/search_classifier.jsonl`` (110: factual questions that
need sources, and chit-chat, arithmetic and rewriting requests that do not) and
``search_classifier_heldout.jsonl`` (40 more, written after the rules were settled and not used to
tune them; the same author wrote both, so read the figures as optimistic). The baseline is what the
API did before the classifier: search every question. A "wrong skip" (a question that needed sources
answered without them) is the costly error and is counted apart.

Time: for the requests the classifier skips, the same engine (``--model``, default ``tiny``; a small
index of its own) answers each twice, with the search and without, and the bench prints the median
time of each, what the search step itself costs (time to the sources, with minus without) and how
many answers were declines ("could not find this in the sources"), the useless answer a search gives
a greeting. On the local index a decline is quicker than an answer (no generation), so skipping the
search buys answers rather than time there; with web search the search step is seconds of page
reads, which a skip saves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from groundglass.server.search_classifier import needs_search

DATA = Path(__file__).parent / "data"
DOCS = [
    (
        "https://bench.example/eiffel",
        "Eiffel Tower",
        "The Eiffel Tower is a wrought-iron lattice tower in "
        "Paris, France. It was completed in 1889 and is 330 metres tall.",
    ),
    (
        "https://bench.example/lovelace",
        "Ada Lovelace",
        "Ada Lovelace was an English mathematician. In 1843 "
        "she published the first computer program, for Charles Babbage's Analytical Engine.",
    ),
    (
        "https://bench.example/python",
        "Python",
        "Python is a programming language created by Guido van Rossum and first released in 1991.",
    ),
    (
        "https://bench.example/etna",
        "Mount Etna",
        "Mount Etna is an active volcano on the east coast of Sicily, Italy, one of the tallest in Europe.",
    ),
]


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    decisions = [needs_search(r["question"]) for r in rows]
    per_question_us = (time.perf_counter() - started) / len(rows) * 1e6
    right = sum(d.search == r["search"] for d, r in zip(decisions, rows, strict=True))
    pairs = list(zip(decisions, rows, strict=True))
    wrong_skips = [r["question"] for d, r in pairs if r["search"] and not d.search]
    wrong_searches = [r["question"] for d, r in pairs if d.search and not r["search"]]
    baseline = sum(r["search"] for r in rows)  # searching everything is right exactly for these
    return {
        "n": len(rows),
        "accuracy": right / len(rows),
        "baseline_accuracy": baseline / len(rows),
        "wrong_skips": wrong_skips,
        "wrong_searches": wrong_searches,
        "us_per_question": per_question_us,
    }


def timed(engine: Any, question: str, *, search: bool) -> tuple[float, float, bool]:
    """(seconds to the finished answer, seconds to the sources (search or not), declined)."""
    from groundglass.answer.events import Done, SourcesFound
    from groundglass.answer.types import AskRequest

    started = time.perf_counter()
    answer = None
    to_sources = 0.0
    for event in engine.stream(AskRequest.from_question(question, disable_search=not search)):
        if isinstance(event, SourcesFound):
            to_sources = time.perf_counter() - started
        elif isinstance(event, Done):
            answer = event.answer
    assert answer is not None
    return time.perf_counter() - started, to_sources, answer.declined


def time_skips(questions: list[str], model: str, threads: int | None) -> dict[str, Any]:
    from groundglass.answer.engine import Engine
    from groundglass.answer.index.documents import Document, Section
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import load_settings

    home = Path(tempfile.mkdtemp(prefix="gg-bench-classifier-"))
    overrides: dict[str, Any] = {"llm__model": model, "retrieval__index": "bench", "llm__max_tokens": 48}
    if threads:
        overrides["llm__threads"] = threads
    settings = load_settings(home=str(home), **overrides)
    index = LocalIndex.open(settings, "bench", create=True)
    add_documents(index, [Document(uri=u, title=t, date=None, sections=[Section("", x)]) for u, t, x in DOCS])
    index.close()
    engine = Engine(settings)
    timed(engine, "warm up: when was the Eiffel Tower completed?", search=True)  # model, index, embedder
    with_search, without, sources_with, sources_without, declined = [], [], [], [], [0, 0]
    for q in questions:
        total, to_sources, d = timed(engine, q, search=True)
        with_search.append(total)
        sources_with.append(to_sources)
        declined[0] += d
        total, to_sources, d = timed(engine, q, search=False)
        without.append(total)
        sources_without.append(to_sources)
        declined[1] += d
    median = statistics.median
    return {
        "n": len(questions),
        "median_s_with_search": median(with_search),
        "median_s_without": median(without),
        "search_s": median(sources_with) - median(sources_without),  # what the search step costs
        "declined_with_search": declined[0],
        "declined_without": declined[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--timed", type=int, default=6, help="skipped requests to answer both ways (0: none)")
    args = parser.parse_args()
    for name in ("search_classifier.jsonl", "search_classifier_heldout.jsonl"):
        r = score(load(name))
        print(
            f"{name}: {r['n']} requests; accuracy {r['accuracy']:.3f} vs baseline (search all) "
            f"{r['baseline_accuracy']:.3f}, ratio {r['accuracy'] / r['baseline_accuracy']:.2f}; "
            f"{r['us_per_question']:.0f} us a request"
        )
        print(f"  wrong skips (needed sources, not searched): {r['wrong_skips']}")
        print(f"  wrong searches (searched for nothing): {r['wrong_searches']}")
    if args.timed:
        rows = load("search_classifier.jsonl") + load("search_classifier_heldout.jsonl")
        skipped = [r["question"] for r in rows if not r["search"] and not needs_search(r["question"]).search]
        picked = skipped[:: max(1, len(skipped) // args.timed)][: args.timed]
        t = time_skips(picked, args.model, args.threads)
        ratio = t["median_s_without"] / t["median_s_with_search"]
        print(
            f"skipped requests answered both ways ({t['n']}, model {args.model}): the search step costs "
            f"{t['search_s']:.2f} s (median, to the sources, with minus without); whole answers: median "
            f"{t['median_s_without']:.2f} s without the search vs {t['median_s_with_search']:.2f} s with "
            f"it (baseline), ratio {ratio:.2f}; declines {t['declined_without']} without vs "
            f"{t['declined_with_search']} with"
        )


if __name__ == "__main__":
    main()
