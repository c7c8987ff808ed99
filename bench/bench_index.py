"""Local index: ingest throughput, index size, retrieval latency at 1x and 10x, retrieval quality.

    .venv/bin/python -m bench.bench_index [--limit N] [--home DIR [--reuse]] [--queries 200] [--skip-10x]

1. Ingest ``builtin:wikipedia`` (10,033 summaries) into a fresh index: chunks/s and the index size.
   Baseline: raw MiniLM ``encode`` of 1,000 of the same chunk texts (the pipeline's floor); ratio.
2. Retrieval-only latency (query embedding + BM25 + vectors + fusion + dedupe), p50/p95 over FanOutQA
   sub-questions, for hybrid, BM25-only and dense-only; baseline: embedding the query alone.
3. The same at 10x: a copy of the index where every document is stored 9 more times (synthetic
   duplicates, 100k chunks); ratio 10x/1x. Each copy keeps the vector and the bag of words (so BM25 and
   dense scores are unchanged) but shuffles the word order, so the near-duplicate filter does not
   collapse the copies: the figure measures scale, not a corpus made of twins.
4. Quality on the FanOutQA dev sub-questions whose evidence page is in the corpus: recall@5 and MRR@10
   of the evidence page, hybrid (min-max score fusion, the default) vs BM25-only vs dense-only, plus
   reciprocal rank fusion (the alternative) for the record. Baseline: BM25-only; ratio hybrid/BM25.
   The same table for 300 keyword queries (the two rarest words of a random summary, which must find
   that summary): the case where exact terms matter and vectors alone fail.

The run that chose ``rank.minmax_fuse`` with equal weights: FanOutQA sub-questions recall@5 0.884 /
MRR 0.767 against 0.866 / 0.727 for reciprocal rank fusion, and on keyword queries 0.983 / 0.837
against 0.950 / 0.758. Weighting towards the vectors gained at most 3 points on FanOutQA but lost
25-45 on keyword queries.
"""

from __future__ import annotations

import argparse
import random
import re
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from groundglass.answer import rank
from groundglass.answer.embeddings import get_embedder
from groundglass.answer.index import LocalIndex, add_documents, add_sources, remove_index
from groundglass.answer.index.builtin import WIKIPEDIA, wikipedia_count, wikipedia_documents
from groundglass.answer.index.documents import Chunk, Document, Section
from groundglass.answer.index.schema import index_dir
from groundglass.answer.index.write import WriteItem
from groundglass.answer.types import Source
from groundglass.config import load_settings

from .fanoutqa_data import subquestions


def fanoutqa_subquestions(titles: set[str]) -> list[tuple[str, str]]:
    """(sub-question, evidence page title) for dev sub-questions whose page is in ``titles``."""
    return subquestions(titles)


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p)) * 1000.0


def ingest(settings, name: str, limit: int | None) -> tuple[LocalIndex, float, int]:
    index = LocalIndex.open(settings, name, create=True)
    started = time.perf_counter()
    if limit is None:
        report = add_sources(index, [WIKIPEDIA], progress=True)
    else:
        report = add_documents(index, wikipedia_documents(limit=limit), progress=True, total=limit)
    return index, time.perf_counter() - started, report.chunks


def read(index: LocalIndex, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the index file directly (a bench may look inside; the engine never does)."""
    con = sqlite3.connect(f"file:{index.path}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def raw_encode_rate(index: LocalIndex, n: int = 1000) -> float:
    texts = [r[0] for r in read(index, "SELECT indexed_text FROM chunks ORDER BY id LIMIT ?", (n,))]
    # the uncached model: the process's embedder has just seen these texts, and would answer from its cache
    embedder = get_embedder().inner
    started = time.perf_counter()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - started)


def latencies(fn: Callable[[str], object], queries: list[str]) -> list[float]:
    fn(queries[0])  # warm caches (vector matrix, SQLite pages)
    out = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - started)
    return out


def latency_table(index: LocalIndex, queries: list[str]) -> dict[str, list[float]]:
    embedder = get_embedder().inner  # uncached: the searches before it put every query in the cache
    return {
        "hybrid": latencies(lambda q: index.search(q, 5, "hybrid"), queries),
        "bm25": latencies(lambda q: index.search(q, 5, "bm25"), queries),
        "dense": latencies(lambda q: index.search(q, 5, "dense"), queries),
        "embed query only (baseline)": latencies(lambda q: embedder.encode([q]), queries),
    }


def print_latency(label: str, table: dict[str, list[float]]) -> None:
    print(label)
    for mode, values in table.items():
        print(f"  {mode:<28} p50 {pct(values, 50):7.1f} ms   p95 {pct(values, 95):7.1f} ms")


def copy_index(index: LocalIndex, name: str) -> LocalIndex:
    """A copy of ``index`` under another name (SQLite's online backup)."""
    remove = index_dir(index.settings, name)
    if remove.exists():
        remove_index(index.settings, name)
    target = LocalIndex.open(index.settings, name, create=True)
    src = sqlite3.connect(index.path)
    dst = sqlite3.connect(target.path)
    src.backup(dst)
    src.close()
    dst.close()
    target.close()
    return LocalIndex.open(index.settings, name)


def shuffled(text: str, seed: int) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def grow_10x(index: LocalIndex, copies: int = 9) -> float:
    """Write ``copies`` more copies of every document (new URIs, same vectors and words, shuffled)."""
    docs = read(index, "SELECT id, uri, title, date, kind FROM documents ORDER BY id")
    chunks: dict[int, list[tuple]] = {}
    sql = (
        "SELECT c.doc_id, c.ord, c.heading, c.body, c.indexed_text, v.embedding FROM chunks c "
        "JOIN vectors v ON v.chunk_id = c.id ORDER BY c.id"
    )
    for row in read(index, sql):
        chunks.setdefault(row[0], []).append(row[1:])
    started = time.perf_counter()
    for n in range(1, copies + 1):
        batch: list[WriteItem] = []
        for doc_id, uri, title, date, kind in docs:
            rows = chunks.get(doc_id, [])
            doc = Document(
                uri=f"{uri}#copy-{n}", title=title, date=date, kind=kind, sections=[Section("", "")]
            )
            items = [
                Chunk(ord=o, heading=h, body=shuffled(b, n), indexed_text=shuffled(t, n))
                for o, h, b, t, _ in rows
            ]
            vectors = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            batch.append(WriteItem(doc, items, vectors, content_hash=f"copy-{n}"))
            if len(batch) >= 2000:
                index.write(batch)
                batch = []
        if batch:
            index.write(batch)
    return time.perf_counter() - started


def rrf_search(index: LocalIndex, query: str, k: int, qvec: np.ndarray) -> list[Source]:
    """Hybrid retrieval with reciprocal rank fusion instead of min-max (for comparison only)."""
    n = max(index.settings.retrieval.candidates, 4 * k)
    bm25 = [c for c, _ in index.bm25(query, n)]
    dense = [c for c, _ in index.dense(qvec, n)]
    fused = rank.rrf_fuse([bm25, dense])
    sources = index.sources(fused[: 2 * k + 10], query)
    return rank.diversify(rank.dedupe(sources), index.settings.retrieval.max_per_source)[:k]


def quality(index: LocalIndex, items: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    vectors = get_embedder().encode([q for q, _ in items])  # once, shared by every mode
    searches: dict[str, Callable[[str, np.ndarray], list[Source]]] = {
        "hybrid (min-max, default)": lambda q, v: index.search(q, 10, "hybrid", query_vector=v),
        "BM25 only (baseline)": lambda q, v: index.search(q, 10, "bm25"),
        "dense only": lambda q, v: index.search(q, 10, "dense", query_vector=v),
        "hybrid (RRF, k=60)": lambda q, v: rrf_search(index, q, 10, v),
    }
    out: dict[str, tuple[float, float]] = {}
    for mode, fn in searches.items():
        hits5 = 0
        rr = 0.0
        for (question, title), vec in zip(items, vectors, strict=True):
            titles = list(dict.fromkeys(s.title for s in fn(question, vec)))
            if title in titles:
                r = titles.index(title) + 1
                rr += 1.0 / r
                hits5 += r <= 5
        out[mode] = (hits5 / len(items), rr / len(items))
    return out


def print_quality(label: str, table: dict[str, tuple[float, float]]) -> None:
    print(label)
    print(f"  {'mode':<26} recall@5   MRR@10")
    for mode, (recall, mrr) in table.items():
        print(f"  {mode:<26} {recall:8.3f} {mrr:8.3f}")
    base, hyb = table["BM25 only (baseline)"], table["hybrid (min-max, default)"]
    print(f"  ratio hybrid/BM25: recall@5 {hyb[0] / base[0]:.2f}, MRR {hyb[1] / base[1]:.2f}")


def keyword_queries(index: LocalIndex, n: int, seed: int = 7) -> list[tuple[str, str]]:
    """(the two rarest words of a summary, its title) for ``n`` random summaries."""
    rows = read(index, "SELECT d.title, c.body FROM chunks c JOIN documents d ON d.id = c.doc_id")
    words: list[set[str]] = []
    df: Counter[str] = Counter()
    for title, body in rows:
        in_title = {w.lower() for w in re.findall(r"\w+", title)}
        ws = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", body)} - in_title
        words.append(ws)
        df.update(ws)
    out = []
    for i in random.Random(seed).sample(range(len(rows)), min(n, len(rows))):
        rare = sorted(words[i], key=lambda w: (df[w], w))[:2]
        if len(rare) == 2:
            out.append((" ".join(rare), rows[i][0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="ingest only the first N summaries (quick run)")
    ap.add_argument(
        "--home",
        type=Path,
        default=None,
        help="GROUNDGLASS_HOME for the bench index (default: a temporary folder)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="use the index already built in --home (skips the ingest figures)",
    )
    ap.add_argument("--queries", type=int, default=200, help="queries for the latency figures")
    ap.add_argument("--skip-10x", action="store_true", help="skip the 10x latency run")
    args = ap.parse_args()

    tmp = None
    if args.home is None:
        tmp = tempfile.TemporaryDirectory(prefix="gg-bench-index-")
        args.home = Path(tmp.name)
    settings = load_settings(home=str(args.home))
    corpus = wikipedia_count(args.limit)
    print(f"corpus: {corpus:,} Wikipedia summaries (builtin:wikipedia); home {args.home}")

    # 1. ingest
    if args.reuse:
        index = LocalIndex.open(settings, "bench")
        st = index.stats()
        print("ingest: skipped (--reuse)")
    else:
        index, seconds, n_chunks = ingest(settings, "bench", args.limit)
        st = index.stats()
        raw = raw_encode_rate(index)
        rate = n_chunks / seconds if seconds else 0.0
        print(
            f"ingest: {st['documents']:,} documents, {n_chunks:,} chunks in {seconds:.1f} s "
            f"= {rate:.1f} chunks/s"
        )
        print(
            f"  baseline: raw MiniLM encode of {min(1000, st['chunks']):,} of the same chunks = {raw:.1f} "
            f"chunks/s; ratio pipeline/raw = {rate / raw:.2f}"
        )
    size, chunks = st["size_bytes"], st["chunks"]
    print(
        f"index size: {size / 1e6:.1f} MB ({size / max(1, chunks) / 1024:.1f} KB per chunk; "
        f"vectors alone {chunks * 384 * 4 / 1e6:.1f} MB)"
    )

    titles = {d.title for d in wikipedia_documents(limit=args.limit)}
    items = fanoutqa_subquestions(titles)
    queries = [q for q, _ in items][: args.queries] or ["What is the capital of France?"]

    # 2. latency at 1x
    one = latency_table(index, queries)
    print_latency(f"retrieval latency, k=5, {len(queries)} FanOutQA sub-questions, {chunks:,} chunks:", one)
    ratio = statistics.median(one["hybrid"]) / statistics.median(one["embed query only (baseline)"])
    print(f"  ratio hybrid/embedding-only (p50) = {ratio:.2f}")

    # 4. quality
    print_quality(
        f"retrieval quality, {len(items)} FanOutQA dev sub-questions whose evidence page is in the corpus:",
        quality(index, items),
    )
    keyword = keyword_queries(index, 300)
    print_quality(
        f"retrieval quality, {len(keyword)} keyword queries (the two rarest words of a random summary):",
        quality(index, keyword),
    )

    # 3. latency at 10x, on a copy
    if not args.skip_10x:
        big = copy_index(index, "bench10x")
        grow_s = grow_10x(big)
        st10 = big.stats()
        started = time.perf_counter()
        big.vectors()
        load_s = time.perf_counter() - started
        print(
            f"10x: {st10['chunks']:,} chunks ({st10['size_bytes'] / 1e6:.0f} MB) written in "
            f"{grow_s:.0f} s; vector matrix loaded in {load_s * 1000:.0f} ms (once per process and change)"
        )
        ten = latency_table(big, queries)
        print_latency(f"retrieval latency at 10x ({st10['chunks']:,} chunks):", ten)
        for mode in ("hybrid", "bm25", "dense"):
            p50 = statistics.median(ten[mode]) / statistics.median(one[mode])
            p95 = pct(ten[mode], 95) / pct(one[mode], 95)
            print(f"  ratio 10x/1x {mode:<7} p50 {p50:.2f}   p95 {p95:.2f}")
        big.close()
        remove_index(settings, "bench10x")
    index.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
