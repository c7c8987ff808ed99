"""Rank the chunks of fetched pages: cheaply over all of them, then precisely over a shortlist.

1. Every page is chunked with the index's chunker (all of it, not only its start: the answer on a long
   manual page is often far down); the chunks of the last pages read are remembered by content, in
   memory and on disk (:mod:`.chunk_cache`).
2. BM25 over all those chunks, in an in-memory SQLite FTS5 table with the index's tokenizer and query
   expression (raised for the question's verbatim terms, :func:`with_literal_terms`, and for a run of
   its words said in its order, :func:`with_phrases`), shortlists the ones worth embedding: each
   page's best two, then the best of all pages up to ``max(12, 2 k)`` chunks (at most
   ``max_chunks_per_page`` of one page), and the first two chunks of a page none of whose chunks
   holds a query word (so a page that says it in other words still competes).
3. Only the shortlist is embedded with MiniLM (vectors cached by a hash of the text: in memory,
   :mod:`groundglass.answer.embeddings`, and on disk, :mod:`.vector_cache`), and the shortlist is
   ranked like the local index ranks its candidates: BM25 and cosine min-max fused with equal
   weights, near-duplicates dropped, at most ``retrieval.max_per_source`` chunks of one page: the best
   fused, then the page's best by BM25 (:func:`lexical_second`), and the chunks of an entry the question
   names in the entry's order (:func:`entry_order`).

Web answers and local answers are therefore scored by the same fusion. Embedding every chunk of a
few long documentation pages is what the shortlist avoids: it takes seconds on a CPU
(``bench/bench_rank.py`` measures before and after).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from groundglass.answer import querytext, rank
from groundglass.answer.index.documents import Chunk, Document
from groundglass.answer.index.query import fts_match, make_snippet
from groundglass.answer.search import chunk_cache, vector_cache
from groundglass.answer.search.chunk_cache import ChunkCache
from groundglass.answer.search.vector_cache import VectorCache
from groundglass.answer.types import Source

if TYPE_CHECKING:
    from groundglass.config import Settings

SHORTLIST_MIN = 12  # chunks embedded at least (when there are that many)
SHORTLIST_PER_K = 2  # ... or this many per chunk wanted
PER_PAGE_FLOOR = 2  # each page's best chunks that are embedded whatever the others score
# How far below an entry's best chunk its opening may score for the entry's own order to put it first
# (fused scores, 0-1): a near tie (:func:`entry_order`).
ENTRY_TIE = 0.25
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"  # the local index's (index/store.py)
PHRASE_MIN_WORDS = 3  # content words in a run of the question's words that count as its phrase
PHRASE_WEIGHT = 1.0  # BM25 points per content word of such a run (a strong chunk scores about 10)


@dataclass
class _Candidate:
    page: int  # position of the page in the input
    doc: Document
    chunk: Chunk


def chunk_pages(documents: Sequence[Document], settings: Settings) -> list[_Candidate]:
    """All chunks of all pages (pages with the same URI: the first wins)."""
    r = settings.retrieval
    disk = ChunkCache(settings.cache_dir / chunk_cache.FILE)
    seen: set[str] = set()
    out: list[_Candidate] = []
    for page, doc in enumerate(documents):
        if doc.uri in seen:
            continue
        seen.add(doc.uri)
        chunks = _chunks(doc, r.chunk_tokens, r.chunk_overlap, disk)
        out.extend(_Candidate(page, doc, chunk) for chunk in chunks)
    return out


_CHUNKED: OrderedDict[tuple[str, int, int], list[Chunk]] = OrderedDict()
_CHUNKED_MAX = 64  # pages whose chunks are kept: splitting a long page is most of a warm ranking
_chunked_lock = threading.Lock()


def _chunks(doc: Document, chunk_tokens: int, overlap: int, disk: ChunkCache) -> list[Chunk]:
    """The index chunker's chunks of ``doc``, remembered by content for the pages read lately (in this
    process, then on disk for the next one)."""
    from groundglass.answer.embeddings import count_tokens_batch
    from groundglass.answer.index.chunking import chunk_document

    content = doc.content_hash(doc.uri)
    key = (content, chunk_tokens, overlap)
    with _chunked_lock:
        if key in _CHUNKED:
            _CHUNKED.move_to_end(key)
            return _CHUNKED[key]
    disk_key = chunk_cache.key(content, chunk_tokens, overlap)
    chunks = disk.get(disk_key)
    if chunks is None:
        chunks = chunk_document(doc, chunk_tokens, overlap, count_tokens_batch)
        disk.put(disk_key, chunks)
    with _chunked_lock:
        _CHUNKED[key] = chunks
        while len(_CHUNKED) > _CHUNKED_MAX:
            _CHUNKED.popitem(last=False)
    return chunks


def bm25_scores(texts: Sequence[str], query: str) -> dict[int, float]:
    """BM25 (higher is better) of each text that matches a query word, by position; SQLite FTS5 in
    memory with the local index's tokenizer, so web and index chunks are scored alike."""
    match = fts_match(query)
    if match is None or not texts:
        return {}
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize='{FTS_TOKENIZER}')")
        conn.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", ((i, t) for i, t in enumerate(texts)))
        rows = conn.execute("SELECT rowid, bm25(t) FROM t WHERE t MATCH ?", (match,)).fetchall()
    finally:
        conn.close()
    return {int(i): -float(s) for i, s in rows}


def with_literal_terms(lexical: dict[int, float], texts: Sequence[str], query: str) -> dict[int, float]:
    """``lexical`` with every text that holds a verbatim term of the query (``%j``, ``--flag``,
    ``os.path.join``; the FTS tokenizer drops or splits them) or a table row it names (``| dig |``)
    raised above all that hold none, the rarer such matches the higher (:meth:`Verbatim.weighted`)."""
    verbatim = querytext.Verbatim.of(query)
    if not verbatim:
        return lexical
    top = max(lexical.values(), default=0.0) + 1.0
    out = dict(lexical)
    for i, weight in verbatim.weighted(texts).items():
        out[i] = out.get(i, 0.0) + top * weight
    return out


def with_phrases(lexical: dict[int, float], bodies: Sequence[str], query: str) -> dict[int, float]:
    """``lexical`` with each text raised by the question's words it says in the question's order: a
    run of :data:`PHRASE_MIN_WORDS` content words or more adds :data:`PHRASE_WEIGHT` per content word
    beyond :data:`PHRASE_MIN_WORDS` less one. BM25 counts words, not their order: a manual's long option
    list is chunked a dozen options at a time, and the chunk whose line says "Number of multiple
    requests to perform at a time" scored below one whose -k and -n lines share as many of the
    question's words. The chunk's body only: its title and heading, which every chunk of the page
    repeats, would give them all the same run."""
    out = dict(lexical)
    for i in lexical:
        run = [w for w in querytext.shared_run(query, bodies[i]) if w not in querytext.STOPWORDS]
        if len(run) >= PHRASE_MIN_WORDS:
            out[i] += PHRASE_WEIGHT * (len(run) - PHRASE_MIN_WORDS + 1)
    return out


def shortlist(
    candidates: Sequence[_Candidate], lexical: dict[int, float], size: int, per_page_max: int
) -> list[int]:
    """Positions of the candidates worth embedding (see the module docstring), best BM25 first."""
    order = sorted(lexical, key=lambda i: -lexical[i])
    per_page: dict[int, int] = {}
    chosen: list[int] = []

    def take(i: int) -> None:
        page = candidates[i].page
        if i in chosen_set or per_page.get(page, 0) >= per_page_max:
            return
        chosen.append(i)
        chosen_set.add(i)
        per_page[page] = per_page.get(page, 0) + 1

    chosen_set: set[int] = set()
    for i in order:  # each page's best few first, so no page is crowded out
        if per_page.get(candidates[i].page, 0) < PER_PAGE_FLOOR:
            take(i)
    for i in order:
        if len(chosen) >= size:
            break
        take(i)
    pages = {c.page for c in candidates}
    for page in sorted(pages - set(per_page)):  # no chunk matched a query word: its first chunks
        for i, c in enumerate(candidates):
            if c.page == page and c.chunk.ord < PER_PAGE_FLOOR:
                take(i)
    return chosen


def chunk_vectors(texts: Sequence[str], settings: Settings, embedder: Any) -> np.ndarray:
    """MiniLM vectors of ``texts``: from the on-disk cache where it has them, else encoded (and stored)."""
    from groundglass.answer.embeddings import DIM, MODEL_NAME

    cache = VectorCache(settings.cache_dir / vector_cache.FILE, DIM)
    keys = [vector_cache.key(MODEL_NAME, t) for t in texts]
    stored = cache.get(keys)
    out = np.empty((len(texts), DIM), dtype=np.float32)
    missing = [i for i, k in enumerate(keys) if k not in stored]
    if missing:
        fresh = embedder.encode([texts[i] for i in missing])
        out[missing] = fresh
        cache.put({keys[i]: vec for i, vec in zip(missing, fresh, strict=True)})
    for i, k in enumerate(keys):
        if k in stored:
            out[i] = stored[k]
    return out


def _source(c: _Candidate, score: float, query: str) -> Source:
    title, heading, body = c.doc.title, c.chunk.heading, c.chunk.body
    own_heading = heading and heading.strip().lower() != title.strip().lower()
    text = f"{heading}\n{body}" if own_heading else body
    return Source(
        url=c.doc.uri,
        title=title,
        text=text,
        score=max(0.0, min(1.0, score)),
        date=c.doc.date,
        doc_id=f"page{c.page}",
        chunk_id=f"page{c.page}-{c.chunk.ord}",
        snippet=make_snippet(body, query),
    )


def entry_order(
    candidates: Sequence[_Candidate], fused: list[tuple[int, float]], query: str
) -> list[tuple[int, float]]:
    """``fused`` (candidate, score; best first) with the chunks of each entry that a term of ``query``
    heads (a section whose heading ends with the term: SQLite's "PRAGMA cache_size") put in the entry's
    own order on the places its chunks hold. An entry opens with what it is (its syntax, what it does,
    its default) and its later chunks repeat its name in their heading; "The default suggested cache
    size is -2000" is in the first of the four, which ranked fifth and lost its page's two places to
    a compatibility note and the page cache's allocation.

    The order only breaks near ties: when the entry's opening scores clearly below its best chunk
    (by more than ``ENTRY_TIE``), the best keeps the first place and the rest follow in order. A long
    entry is a class with its parameters, methods and examples, and what is asked of it may be far
    from its opening: ThreadPoolExecutor's "Changed in version 3.8: Default value of max_workers is
    changed to min(32, os.cpu_count() + 4)" scored 0.97, its opening 0.18, and the entry's order put
    the opening and an example on the page's two places. cache_size's four chunks scored 0.85-0.92."""
    terms = {t.removesuffix("()") for t in querytext.Verbatim.of(query).terms}
    if not terms:
        return fused
    entries: dict[tuple[int, str], list[int]] = {}  # positions in fused
    for pos, (i, _) in enumerate(fused):
        c = candidates[i]
        words = c.chunk.heading.split()
        last = words[-1].removesuffix("()") if words else ""
        if any(last == t or last.endswith("." + t) for t in terms):
            entries.setdefault((c.page, c.chunk.heading), []).append(pos)
    out = list(fused)
    scores = dict(fused)
    for places in entries.values():
        in_order = sorted((fused[p][0] for p in places), key=lambda i: candidates[i].chunk.ord)
        best = fused[places[0]][0]
        if scores[best] - scores[in_order[0]] > ENTRY_TIE:
            in_order = [best, *(i for i in in_order if i != best)]
        for p, i in zip(places, in_order, strict=True):
            out[p] = (i, fused[p][1])
    return out


def lexical_second(
    candidates: Sequence[_Candidate], fused: list[tuple[int, float]], lexical: dict[int, float]
) -> list[tuple[int, float]]:
    """``fused`` with each page's best lexical chunk moved up to the page's second place (with that
    place's score) when it ranks lower, so that of the page's places (``retrieval.max_per_source``) one
    goes to each retriever's choice. MiniLM put "Use the ".dump" command to convert the entire contents
    of a database into a single UTF-8 text file" 36th of SQLite's shell page for "Which dot-command
    writes out the entire database as SQL text?", where BM25 put it first, and min-max fusion left it
    fifth."""
    out = list(fused)
    best: dict[int, int] = {}
    for i, _ in fused:
        page = candidates[i].page
        if i in lexical and (page not in best or lexical[i] > lexical[best[page]]):
            best[page] = i
    for page, top in best.items():
        places = [pos for pos, (i, _) in enumerate(out) if candidates[i].page == page]
        at = next(pos for pos in places if out[pos][0] == top)
        if len(places) < 2 or at <= places[1]:
            continue
        moved = [out[p][0] for p in places]
        moved.remove(top)
        moved.insert(1, top)
        for p, i in zip(places, moved, strict=True):
            out[p] = (i, out[p][1])
    return out


def rank_pages(
    documents: list[Document], query: str, settings: Settings, k: int, max_chunks_per_page: int
) -> list[Source]:
    """The ``k`` best chunks of ``documents`` for ``query`` (documents with the same URI: first wins).

    ``max_chunks_per_page``: at most this many chunks of one page are embedded."""
    if k <= 0 or not documents:
        return []
    candidates = chunk_pages(documents, settings)
    if not candidates:
        return []
    from groundglass.answer.embeddings import get_embedder

    lexical = with_literal_terms(
        bm25_scores([c.chunk.indexed_text for c in candidates], query),
        [c.chunk.indexed_text for c in candidates],
        query,
    )
    lexical = with_phrases(lexical, [c.chunk.body for c in candidates], query)
    size = max(SHORTLIST_MIN, SHORTLIST_PER_K * k)
    picked = shortlist(candidates, lexical, size, max(PER_PAGE_FLOOR, max_chunks_per_page))
    embedder = get_embedder()
    query_vector = embedder.encode([query])[0]
    texts = [candidates[i].chunk.indexed_text for i in picked]
    cosine = chunk_vectors(texts, settings, embedder) @ query_vector
    dense = {i: float(s) for i, s in zip(picked, cosine, strict=True)}
    fused = rank.minmax_fuse([{i: lexical[i] for i in picked if i in lexical}, dense])
    fused = entry_order(candidates, lexical_second(candidates, fused, lexical), query)
    sources = [_source(candidates[i], score, query) for i, score in fused]
    return rank.diversify(rank.dedupe(sources), settings.retrieval.max_per_source, query)[:k]
