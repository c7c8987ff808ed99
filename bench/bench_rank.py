"""Web ranking on long documentation pages: read pages -> ranked, fitted context. Before vs after.

    .venv/bin/python -m bench.bench_rank [--questions 20] [--model default] [--repeat 1]

Pages are the long pages of Python's documentation from Debian's ``python3.11-doc`` package
(``/usr/share/doc/python3.11/html/library``), extracted the way the page reader does it
(``html_document``). Each question gets its gold page and the two long pages after it in a fixed
list, as three search results would; extraction is not timed (the reader's job).

1. Time from read pages to the context the model gets (rank, relevance gate, budget), p50/p95:
   - before: the previous ``rank_pages`` (the first ``max_chunks_per_page`` chunks of each page, all
     embedded with torch MiniLM, written to a scratch SQLite index and searched), the gate's MiniLM
     encode of the kept sources, then ``fit_budget``;
   - after: ``rank_pages`` now (BM25 over every chunk, ONNX int8 MiniLM over a shortlist), the gate,
     ``condense`` and ``fit_budget``; once with empty caches; twice with the pages read again by a new
     process (as each ``groundglass ask`` is: memory empty), first with only the vectors on disk (the
     pages split again: the baseline of the on-disk chunk cache), then with the chunks too; and once
     with the pages read again by the same process.
   Ratio before/after. Also: in how many questions the gold phrase is in the context.
2. Prompt tokens (the model's own tokenizer, whole prompt via ``prompt.build_messages``) before and
   after ``condense``, on the same ranked sources, at the ``low`` context size (4 sources, 900 tokens).

The machine may be shared; figures are from one run, before and after side by side.

Why ``rank_pages`` embeds a shortlist only: embedding every chunk of three long documentation pages
took ~12 s on the 2 cores of the development machine with torch MiniLM.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from groundglass.answer import prompt, rank
from groundglass.answer.condense import condense
from groundglass.answer.embeddings import CachedEmbedder, count_tokens_batch, load_embedder
from groundglass.answer.index.documents import Document
from groundglass.answer.llm.base import ChatMessage
from groundglass.answer.search import chunk_cache, pages, vector_cache
from groundglass.answer.types import Source
from groundglass.config import Settings, load_settings

DOCS = Path("/usr/share/doc/python3.11/html/library")
LONG_PAGES = [
    "os",
    "stdtypes",
    "multiprocessing",
    "datetime",
    "typing",
    "unittest.mock",
    "ssl",
    "unittest",
    "ctypes",
    "decimal",
    "argparse",
    "socket",
    "sqlite3",
    "functions",
    "subprocess",
    "asyncio-task",
    "functools",
    "collections",
    "sys",
    "pickle",
    "tempfile",
    "shutil",
    "json",
    "bisect",
    "logging",
    "re",
    "pathlib",
    "itertools",
    "string",
    "threading",
]

# (question, gold page, a phrase of the gold page's answer)
QUESTIONS = [
    ("What does str.partition return if the separator is not found?", "stdtypes", "two empty strings"),
    ("What exception does os.makedirs raise if the directory already exists?", "os", "FileExistsError"),
    ("What does nargs='?' do in argparse?", "argparse", "consumed from the command line if possible"),
    ("How do I change the maximum recursion depth of the Python interpreter?", "sys", "setrecursionlimit"),
    (
        "What happens in subprocess.run when check is true and the process fails?",
        "subprocess",
        "CalledProcessError",
    ),
    (
        "What does asyncio.gather do with exceptions when return_exceptions is true?",
        "asyncio-task",
        "treated the same as successful results",
    ),
    ("What happens if lru_cache maxsize is set to None?", "functools", "LRU feature is disabled"),
    ("What does bisect_left return?", "bisect", "insertion point"),
    ("When does SpooledTemporaryFile write its data to disk?", "tempfile", "max_size"),
    ("Which mapping do writes and deletions of a ChainMap change?", "collections", "first mapping"),
    (
        "What does zip do with strict=True when the iterables have different lengths?",
        "functions",
        "ValueError",
    ),
    ("What is the default precision of the decimal module's context?", "decimal", "28"),
    ("What does json.dumps do with sort_keys=True?", "json", "sorted by key"),
    (
        "What does shutil.rmtree do when ignore_errors is true?",
        "shutil",
        "errors resulting from failed removals",
    ),
    ("How do I choose the start method for multiprocessing?", "multiprocessing", "set_start_method"),
    ("What does os.walk do when topdown is false?", "os", "bottom-up"),
    ("What does sqlite3.connect's isolation_level control?", "sqlite3", "isolation_level"),
    ("What is typing.TYPE_CHECKING?", "typing", "False at runtime"),
    ("What does datetime.fromisoformat accept?", "datetime", "ISO 8601"),
    ("What does itertools.groupby require of its input?", "itertools", "sorted on the same key"),
    ("What does re.fullmatch return if the whole string does not match?", "re", "None"),
    ("What does pathlib's Path.resolve do with symlinks?", "pathlib", "symlinks resolved"),
    ("How do I make a thread a daemon thread?", "threading", "daemon"),
    ("What does logging.basicConfig do if the root logger already has handlers?", "logging", "does nothing"),
]


def load_pages() -> dict[str, Document]:
    from groundglass.answer.index.extract import html_document

    if not DOCS.is_dir():
        raise SystemExit(f"{DOCS} is missing: apt-get install python3.11-doc")
    out = {}
    for name in LONG_PAGES:
        path = DOCS / f"{name}.html"
        if path.is_file():
            out[name] = html_document(
                path.read_bytes(), f"https://docs.python.org/3.11/library/{name}.html", name
            )
    return out


def results_for(gold: str, names: list[str]) -> list[str]:
    """The gold page and the two long pages after it in the list (three search results)."""
    at = names.index(gold)
    others = [n for n in names[at + 1 :] + names[:at] if n != gold][:2]
    return [gold, *others]


# --- before: the previous rank_pages, kept here for the comparison ----------------------------------------


def rank_pages_before(
    documents: list[Document], query: str, settings: Settings, k: int, max_chunks_per_page: int, embedder: Any
) -> list[Source]:
    from groundglass.answer.index.chunking import chunk_document
    from groundglass.answer.index.store import LocalIndex
    from groundglass.answer.index.vectors import VECTORS
    from groundglass.answer.index.write import WriteItem

    r = settings.retrieval
    chunked = []
    for doc in documents:
        chunks = chunk_document(doc, r.chunk_tokens, r.chunk_overlap, count_tokens_batch)
        chunks = chunks[:max_chunks_per_page]
        if chunks:
            chunked.append((doc, chunks))
    vectors = embedder.encode([c.indexed_text for _, chunks in chunked for c in chunks])
    items, row = [], 0
    for doc, chunks in chunked:
        items.append(WriteItem(doc, chunks, vectors[row : row + len(chunks)], doc.content_hash()))
        row += len(chunks)
    with tempfile.TemporaryDirectory(prefix="groundglass-web-") as tmp:
        scratch = settings.model_copy(update={"home": Path(tmp)})
        index = LocalIndex.open(scratch, "web", create=True)
        try:
            index.write(items)
            return index.search(query, k, query_vector=embedder.encode([query])[0])
        finally:
            VECTORS.drop(str(index.path.resolve()))
            index.close()


def gate(sources: list[Source], query: str, embedder: Any, settings: Settings, top_k: int) -> list[Source]:
    """The engine's relevance gate (MiniLM cosine floor and margin) on the best ``2 * top_k``."""
    r = settings.retrieval
    sources = rank.diversify(rank.dedupe(sources), r.max_per_source)[: 2 * top_k]
    if not sources:
        return []
    vecs = embedder.encode([query, *(f"{s.title}\n{s.text}" for s in sources)])
    sim = vecs[1:] @ vecs[0]
    floor = max(r.min_relevance, float(sim.max()) - r.relevance_margin)
    return [s for s, x in zip(sources, sim, strict=True) if x >= floor][:top_k]


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=len(QUESTIONS))
    ap.add_argument("--model", default="default", help="whose tokenizer counts the prompt tokens")
    args = ap.parse_args()

    settings = load_settings(home=tempfile.mkdtemp(prefix="gg-bench-rank-"))
    preset = settings.search.context_sizes["low"]
    k, top_k, budget = 2 * preset.top_k, preset.top_k, preset.context_tokens
    per_page = settings.search.max_chunks_per_page
    docs = load_pages()
    names = [n for n in LONG_PAGES if n in docs]
    questions = [q for q in QUESTIONS if q[1] in docs][: args.questions]
    n_chunks = {n: len(pages.chunk_pages([d], settings)) for n, d in docs.items()}
    print(
        f"pages: {len(docs)} long pages of Python's documentation, "
        f"{statistics.median(n_chunks.values()):.0f} chunks each (median; max {max(n_chunks.values())}); "
        f"{len(questions)} questions x 3 pages"
    )

    from groundglass.answer.llm.load import load_llm

    llm = load_llm(
        args.model,
        settings.model_copy(update={"llm": settings.llm.model_copy(update={"context_length": 4096})}),
    )
    count = llm.count_tokens

    started = time.perf_counter()
    torch_embedder = load_embedder("torch")
    print(f"load torch embedder: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    onnx_model = load_embedder("onnx")
    print(
        f"load onnx embedder ({onnx_model.backend}): {time.perf_counter() - started:.1f} s "
        "(first use exports it: minutes, once)"
    )

    def run_before(q: str, group: list[Document]) -> list[Source]:
        ranked = rank_pages_before(group, q, settings, k, per_page, torch_embedder)
        kept = gate(ranked, q, torch_embedder, settings, top_k)
        return rank.fit_budget(kept, budget, count, overhead_tokens=16)

    cached = CachedEmbedder(onnx_model)
    pages_embedder = {"embedder": cached}

    def run_after(q: str, group: list[Document], dense: bool = True) -> list[Source]:
        import groundglass.answer.embeddings as emb

        emb._embedder = pages_embedder["embedder"]
        ranked = pages.rank_pages(group, q, settings, k, per_page)
        kept = gate(ranked, q, pages_embedder["embedder"], settings, top_k)
        kept = condense(kept, q, count, embed=pages_embedder["embedder"].encode if dense else None)
        return rank.fit_budget(kept, budget, count, overhead_tokens=16)

    timings: dict[str, list[float]] = {
        "before": [],
        "after (cold cache)": [],
        "after (new proc, no chunks)": [],
        "after (read again, new proc)": [],
        "after (pages read again)": [],
    }
    found: dict[str, int] = dict.fromkeys(timings, 0)
    tokens: dict[str, list[int]] = {"before": [], "after": []}
    kept_phrase = {"before": 0, "after": 0}

    def prompt_tokens(q: str, sources: list[Source]) -> int:
        messages: list[ChatMessage] = prompt.build_messages(q, sources)
        return sum(count(m.content) for m in messages)

    for q, gold, phrase in questions:
        group = [docs[n] for n in results_for(gold, names)]
        contexts: dict[str, list[Source]] = {}
        for label in timings:
            if label == "after (cold cache)":  # nothing cached, in memory or on disk
                (settings.cache_dir / vector_cache.FILE).unlink(missing_ok=True)
            if label in ("after (cold cache)", "after (new proc, no chunks)"):
                (settings.cache_dir / chunk_cache.FILE).unlink(missing_ok=True)
            if label.startswith("after (") and label != "after (pages read again)":
                # a new process (each `groundglass ask` is one): nothing in memory, the disk caches kept
                pages_embedder["embedder"] = CachedEmbedder(onnx_model)
                pages._CHUNKED.clear()
            t0 = time.perf_counter()
            ctx = run_before(q, group) if label == "before" else run_after(q, group)
            timings[label].append(time.perf_counter() - t0)
            found[label] += any(phrase.lower() in s.text.lower() for s in ctx)
            contexts[label] = ctx
        # tokens: the same ranked sources with and without condensing
        ranked = pages.rank_pages(group, q, settings, k, per_page)
        kept = gate(ranked, q, pages_embedder["embedder"], settings, top_k)
        whole = rank.fit_budget(kept, budget, count, overhead_tokens=16)
        condensed = condense(kept, q, count, embed=pages_embedder["embedder"].encode)
        dense = rank.fit_budget(condensed, budget, count, overhead_tokens=16)
        tokens["before"].append(prompt_tokens(q, whole))
        tokens["after"].append(prompt_tokens(q, dense))
        kept_phrase["before"] += any(phrase.lower() in s.text.lower() for s in whole)
        kept_phrase["after"] += any(phrase.lower() in s.text.lower() for s in dense)
        after = " / ".join(f"{v[-1]:5.2f}" for label, v in timings.items() if label != "before")
        print(
            f"  {gold:<16} before {timings['before'][-1]:6.2f} s  after {after} s"
            f"   prompt {tokens['before'][-1]:5d} -> "
            f"{tokens['after'][-1]:5d} tokens",
            flush=True,
        )

    n = len(questions)
    print(
        f"\n1. read pages -> fitted context ({n} questions, 3 pages each, k={k}, top_k={top_k}, "
        f"{budget} tokens)"
    )
    print(f"  {'path':<28} {'p50 s':>7} {'p95 s':>7}  gold phrase in context")
    for label, values in timings.items():
        print(f"  {label:<28} {statistics.median(values):7.2f} {pct(values, 95):7.2f}  {found[label]}/{n}")
    base = statistics.median(timings["before"])
    for label in timings:
        if label != "before":
            print(f"  ratio before/{label}: {base / statistics.median(timings[label]):.1f}x faster (p50)")
    chunks_kept = statistics.median(timings["after (read again, new proc)"])
    print(
        "  new process, chunks read from disk vs split again: "
        f"{chunks_kept / statistics.median(timings['after (new proc, no chunks)']):.2f}x the time (p50)"
    )
    print(
        f"\n2. prompt tokens ({args.model} tokenizer, whole prompt), same ranked sources, whole chunks vs "
        "condensed"
    )
    b, a = tokens["before"], tokens["after"]
    print(
        f"  whole chunks (baseline): p50 {statistics.median(b):.0f}, mean {statistics.mean(b):.0f}; "
        f"gold phrase in context {kept_phrase['before']}/{n}"
    )
    print(
        f"  condensed:               p50 {statistics.median(a):.0f}, mean {statistics.mean(a):.0f}; "
        f"gold phrase in context {kept_phrase['after']}/{n}"
    )
    print(f"  ratio condensed/whole: {statistics.mean(a) / statistics.mean(b):.2f} (mean)")


if __name__ == "__main__":
    main()
