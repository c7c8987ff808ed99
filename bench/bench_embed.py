"""MiniLM on ONNX Runtime (int8) vs torch: speed, agreement of the vectors, and retrieval quality.

    .venv/bin/python -m bench.bench_embed [--distractors 2000] [--threads 2]

Corpus: the built-in Wikipedia summaries that are evidence pages of FanOutQA dev sub-questions, plus
``--distractors`` other summaries, each embedded as the index embeds it (title, description, text).

1. Encode throughput (texts/s) of the whole corpus, torch (sentence-transformers, the baseline) vs
   ONNX Runtime (the exported graph), same texts, same process; ratio.
2. Agreement: cosine between the two vectors of each text (min, 1st percentile, mean).
3. Quality: recall@5 and MRR@10 of the evidence page for the sub-questions, dense retrieval with each
   embedder (query and corpus from the same one), and ONNX queries against torch's corpus vectors
   (an index built before the switch, queried after it).
4. Query latency (one question, p50 over the sub-questions), torch vs ONNX.

The machine may be shared; figures are from one run, side by side.

Why ``embeddings`` runs the float32 graph: for the packaged weights the int8 graph's lowest probe
cosine against torch was 0.948 (on a one-word text; 0.989 on ordinary sentences), under the 0.99
``embed_onnx`` asks for, while the float32 graph gives torch's vectors (cosine 1.0000).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from groundglass.answer.embeddings import count_tokens_batch, load_embedder
from groundglass.answer.index.builtin import wikipedia_documents
from groundglass.answer.index.chunking import chunk_document

from .fanoutqa_data import subquestions


def corpus(distractors: int) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    docs = {d.title: d for d in wikipedia_documents()}
    items = subquestions(set(docs))
    gold = sorted({t for _, t in items})
    others = [t for t in docs if t not in set(gold)][:distractors]
    titles, texts = [], []
    for t in [*gold, *others]:
        for c in chunk_document(docs[t], 180, 30, count_tokens_batch):
            titles.append(t)
            texts.append(c.indexed_text)
    return titles, texts, items


def quality(
    queries: np.ndarray, matrix: np.ndarray, titles: list[str], items: list[tuple[str, str]]
) -> tuple[float, float]:
    hits, rr = 0, 0.0
    scores = queries @ matrix.T
    for row, (_, gold) in zip(scores, items, strict=True):
        ranked = list(dict.fromkeys(titles[i] for i in np.argsort(-row)[:50]))
        if gold in ranked:
            r = ranked.index(gold) + 1
            hits += r <= 5
            rr += 1.0 / r if r <= 10 else 0.0
    return hits / len(items), rr / len(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--distractors", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=100, help="sub-questions timed one by one")
    args = ap.parse_args()

    titles, texts, items = corpus(args.distractors)
    print(
        f"corpus: {len(set(titles)):,} summaries, {len(texts):,} chunks; "
        f"{len(items)} FanOutQA dev sub-questions"
    )
    embedders = {"torch (baseline)": load_embedder("torch"), "onnx": load_embedder("onnx")}
    print(f"onnx graph: {embedders['onnx'].backend} ({embedders['onnx'].graph})")
    matrices, rates, query_vecs, latency = {}, {}, {}, {}
    for name, emb in embedders.items():
        emb.encode(texts[:32])  # warm up
        started = time.perf_counter()
        matrices[name] = emb.encode(texts)
        rates[name] = len(texts) / (time.perf_counter() - started)
        query_vecs[name] = emb.encode([q for q, _ in items])
        times = []
        for q, _ in items[: args.queries]:
            t0 = time.perf_counter()
            emb.encode([q])
            times.append(time.perf_counter() - t0)
        latency[name] = statistics.median(times) * 1000
    base, onnx = "torch (baseline)", "onnx"
    print("\n1. encode throughput, whole corpus")
    for name in embedders:
        print(f"  {name:<18} {rates[name]:8.1f} chunks/s")
    print(f"  ratio onnx/torch: {rates[onnx] / rates[base]:.2f}x")
    cos = np.sum(matrices[base] * matrices[onnx], axis=1)
    print(
        f"\n2. cosine(torch, onnx) per chunk: min {cos.min():.4f}, "
        f"1st percentile {np.percentile(cos, 1):.4f}, "
        f"mean {cos.mean():.4f}"
    )
    print("\n3. dense retrieval of the evidence page        recall@5   MRR@10")
    rows = {
        "torch queries, torch corpus (baseline)": (query_vecs[base], matrices[base]),
        "onnx queries, onnx corpus": (query_vecs[onnx], matrices[onnx]),
        "onnx queries, torch corpus (old index)": (query_vecs[onnx], matrices[base]),
    }
    results = {label: quality(q, m, titles, items) for label, (q, m) in rows.items()}
    for label, (recall, mrr) in results.items():
        print(f"  {label:<42} {recall:8.3f} {mrr:8.3f}")
    b, o = results["torch queries, torch corpus (baseline)"], results["onnx queries, onnx corpus"]
    print(f"  ratio onnx/torch: recall@5 {o[0] / b[0]:.3f}, MRR {o[1] / b[1]:.3f}")
    print(
        f"\n4. one query, p50 over {min(args.queries, len(items))}: torch {latency[base]:.1f} ms, onnx "
        f"{latency[onnx]:.1f} ms; ratio {latency[base] / latency[onnx]:.1f}x"
    )


if __name__ == "__main__":
    main()
