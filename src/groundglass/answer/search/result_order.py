"""The order in which a search's results are read: the provider's first result, then the others by
how close their title and snippet are to the question (MiniLM cosine, the embedder ranking uses).

Only the first few results are read (``search.context_sizes``: 3 pages at ``low``), so their order
decides which pages the answer can come from. A keyword engine ranks first the pages that repeat the
query's words most: on PostgreSQL's manual, "What is the maximum number of columns in a PostgreSQL
table?" put five information-schema pages (each a table of "columns") before "Appendix K. PostgreSQL
Limits", and "Which function returns the name of the current database?" put six pages before "System
Information Functions". Title and snippet say what a page is about, which a sentence embedding reads
better than term counts. Measured on the documentation QA sets over a loopback BM25 search
(``bench/eval_docs.py``'s site), the gold page among the first three results: PostgreSQL 0.50 -> 0.88,
Python 0.86 -> 0.90. The provider's first result keeps its place: a good engine's best guess is right
most of the time, and a snippet can be too short to show it.

``search.rerank_results = false`` reads the results in the provider's order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from groundglass.answer.search.base import SearchResult


def reading_order(query: str, results: list[SearchResult]) -> list[SearchResult]:
    """``results`` with the first kept first and the rest by the cosine of ``query`` with their title
    and snippet (stable: equal scores keep the provider's order)."""
    if len(results) < 3:
        return list(results)
    from groundglass.answer.embeddings import get_embedder

    rest = results[1:]
    texts = [f"{r.title.strip()}. {r.snippet.strip()}".strip(". ") or r.url for r in rest]
    vectors = get_embedder().encode([query, *texts])
    cosine = vectors[1:] @ vectors[0]
    order = sorted(range(len(rest)), key=lambda i: -float(cosine[i]))
    return [results[0], *(rest[i] for i in order)]
