"""Chunk and rank fetched pages with the local index's own code.

The pages of one search are written to a scratch :class:`~groundglass.answer.index.store.LocalIndex`
in a temporary folder (same chunker, same MiniLM vectors, same FTS5 BM25, same fusion, dedupe and
per-document diversity) and searched once; the folder is deleted afterwards. Web answers and local
answers are therefore ranked by one piece of code, and a fix to it fixes both.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from groundglass.answer.index.documents import Document
from groundglass.answer.types import Source

if TYPE_CHECKING:
    from groundglass.config import Settings

SCRATCH_INDEX = "web"


def rank_pages(documents: list[Document], query: str, settings: Settings, k: int,
               max_chunks_per_page: int) -> list[Source]:
    """The ``k`` best chunks of ``documents`` for ``query`` (documents with the same URI: first wins)."""
    from groundglass.answer.embeddings import count_tokens_batch, get_embedder
    from groundglass.answer.index.chunking import chunk_document
    from groundglass.answer.index.store import VECTORS, LocalIndex, WriteItem

    r = settings.retrieval
    seen: set[str] = set()
    chunked = []
    for doc in documents:
        if doc.uri in seen:
            continue
        seen.add(doc.uri)
        chunks = chunk_document(doc, r.chunk_tokens, r.chunk_overlap, count_tokens_batch)
        chunks = chunks[:max_chunks_per_page]
        if chunks:
            chunked.append((doc, chunks))
    if not chunked or k <= 0:
        return []
    vectors = get_embedder().encode([c.indexed_text for _, chunks in chunked for c in chunks])
    items: list[WriteItem] = []
    row = 0
    for doc, chunks in chunked:
        items.append(WriteItem(doc, chunks, vectors[row:row + len(chunks)], doc.content_hash()))
        row += len(chunks)
    with tempfile.TemporaryDirectory(prefix="groundglass-web-") as tmp:
        scratch = settings.model_copy(update={"home": Path(tmp)})
        index = LocalIndex.open(scratch, SCRATCH_INDEX, create=True)
        try:
            index.write(items)
            return index.search(query, k)
        finally:
            VECTORS.drop(str(index.path.resolve()))
            index.close()
