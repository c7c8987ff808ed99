"""Calibration of the conversation's source reuse (``conversation.covered_by``) on FanOutQA dev.

A follow-up turn may reuse the sources gathered earlier instead of searching again when they already
answer it. This measures, with MiniLM cosines between a question and passages (chunks of its
Wikipedia summary, as the index stores them), how often a threshold on the best cosine:

- reuses when it should: the earlier passages are the question's own evidence page and one of them
  contains the gold answer (``answered``);
- reuses when it should not: the earlier passages are a sibling sub-question's page (same multi-hop
  question, another entity) and none contains the answer (``related``): the typical follow-up that
  needs a new search;

and how many passages of an unrelated conversation (another FanOutQA question's pages, ``unrelated``)
and of siblings survive the relevance floor that drops stale sources.

Baseline: no reuse at all (every turn searches: 0 % reused, 0 % wrongly reused).

    .venv/bin/python -m bench.bench_reuse

The run that set ``conversation.RELEVANCE_FLOOR`` and ``COVER_THRESHOLD``: 502 sub-questions;
"answers" = a chunk of the question's own page contains the gold answer (90), "lacks" = the page is
about the subject but no chunk has the answer (412), "sibling" = the page of another sub-question of
the same multi-hop question (2402).

- Floor 0.3 (``retrieval.min_relevance``, which keeps the gold passage for 99.8 % of these
  sub-questions): it drops 97 % of the passages of an unrelated conversation and 71 % of the sibling
  pages' passages.
- Cosine alone at 0.65 reuses for 42 % of "answers" against 19 % of "lacks"; with the words check at
  0.55, 50 % against 12 % (4.0x), and never a sibling page.
"""

from __future__ import annotations

import os
import random
import re
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from bench.fanoutqa_data import dev_questions, walk
from groundglass.answer.conversation import COVER_THRESHOLD, RELEVANCE_FLOOR, answers_query
from groundglass.answer.embeddings import count_tokens_batch, get_embedder
from groundglass.answer.index.builtin import _load
from groundglass.answer.index.chunking import chunk_document
from groundglass.answer.index.documents import Document, Section


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", re.sub(r"\s+", " ", text.lower())).strip()


def main() -> None:
    started = time.perf_counter()
    pages = {str(it["title"]): it for it in _load()}
    chunks_of: dict[str, list[str]] = {}

    def chunks(title: str) -> list[str]:
        if title not in chunks_of:
            it = pages[title]
            doc = Document(
                uri=title,
                title=title,
                kind="wikipedia",
                sections=[Section(str(it.get("description") or ""), str(it["extract"]))],
            )
            chunks_of[title] = [c.indexed_text for c in chunk_document(doc, 180, 30, count_tokens_batch)]
        return chunks_of[title]

    # (question, own page, sibling pages, gold answer) for sub-questions with a string answer
    items: list[tuple[str, str, list[str], str]] = []
    top_pages: list[list[str]] = []
    for q in dev_questions():
        subs = [d for d in walk(q) if (d.get("evidence") or {}).get("title") in pages]
        titles = sorted({d["evidence"]["title"] for d in subs})
        top_pages.append(titles)
        for d in subs:
            answer = d.get("answer")
            if isinstance(answer, (int, float)):
                answer = str(answer)
            if not isinstance(answer, str) or len(_norm(answer)) < 2:
                continue
            own = d["evidence"]["title"]
            items.append((d["question"], own, [t for t in titles if t != own], answer))

    embedder = get_embedder()
    all_titles = sorted({t for ts in top_pages for t in ts})
    texts = [c for t in all_titles for c in chunks(t)]
    vecs = embedder.encode(texts)
    offset, rows = 0, {}
    for t in all_titles:
        n = len(chunks(t))
        rows[t] = vecs[offset : offset + n]
        offset += n
    qvecs = embedder.encode([q for q, *_ in items])

    # per question: best cosine (cosine only) and whether answers_query accepts a chunk, per threshold
    thresholds = (0.45, 0.5, COVER_THRESHOLD, 0.6, 0.65, 0.7)
    answered: list[tuple[float, list[bool]]] = []
    unanswered: list[tuple[float, list[bool]]] = []
    related: list[tuple[float, list[bool]]] = []
    unrelated_chunks: list[float] = []
    sibling_chunks: list[float] = []
    rng = random.Random(0)

    def decide(question: str, title: str, qv: np.ndarray) -> tuple[float, list[bool]]:
        sims = rows[title] @ qv
        return float(sims.max()), [
            any(
                answers_query(float(x), question, c, cover_threshold=t)
                for x, c in zip(sims, chunks(title), strict=True)
            )
            for t in thresholds
        ]

    for (question, own, siblings, answer), qv in zip(items, qvecs, strict=True):
        gold = _norm(answer)
        has = any(gold in _norm(c) for c in chunks(own))
        (answered if has else unanswered).append(decide(question, own, qv))
        for sib in siblings:
            if not any(gold in _norm(c) for c in chunks(sib)):
                related.append(decide(question, sib, qv))
            sibling_chunks.extend(float(x) for x in rows[sib] @ qv)
        other = rng.choice([ts for ts in top_pages if own not in ts and ts])
        for t in other:
            unrelated_chunks.extend(float(x) for x in rows[t] @ qv)

    def share(group: list[tuple[float, list[bool]]], j: int, words: bool) -> float:
        hits = [d[1][j] if words else d[0] >= thresholds[j] for d in group]
        return float(np.mean(hits))

    print(
        f"{len(items)} FanOutQA dev sub-questions with a string answer and their page in the corpus: "
        f"{len(answered)} answered by a passage of their page, {len(unanswered)} whose page lacks the "
        f"answer; {len(related)} sibling pages that do not answer; {time.perf_counter() - started:.0f} s"
    )
    print(
        "\nreuse rate: when the page answers / when the page is about the subject but lacks the answer / "
        "sibling page"
    )
    print("threshold   cosine only                 cosine + all query words in the passage")
    for j, t in enumerate(thresholds):
        mark = "  <- COVER_THRESHOLD" if t == COVER_THRESHOLD else ""
        print(
            f"  {t:.2f}    {share(answered, j, False):6.1%} {share(unanswered, j, False):6.1%} "
            f"{share(related, j, False):6.1%}    {share(answered, j, True):6.1%} "
            f"{share(unanswered, j, True):6.1%} {share(related, j, True):6.1%}{mark}"
        )
    print("baseline (no reuse): 0.0 % reused, 0.0 % reused wrongly")
    u, s = np.asarray(unrelated_chunks), np.asarray(sibling_chunks)
    print(
        f"\nrelevance floor {RELEVANCE_FLOOR}: drops {(u < RELEVANCE_FLOOR).mean():.1%} of {len(u)} "
        f"passages from an unrelated conversation, {(s < RELEVANCE_FLOOR).mean():.1%} of {len(s)} "
        "sibling passages"
    )
    j = thresholds.index(COVER_THRESHOLD)
    right, wrong = share(answered, j, True), share(unanswered, j, True)
    print(
        f"at {COVER_THRESHOLD} with the words check: reuse when answered / when the page lacks the "
        f"answer = {right:.1%} / {wrong:.1%} = {right / max(wrong, 1e-9):.1f}x "
        f"(cosine only at 0.65: {share(answered, 4, False) / max(share(unanswered, 4, False), 1e-9):.1f}x; "
        "baseline: no reuse)"
    )


if __name__ == "__main__":
    main()
