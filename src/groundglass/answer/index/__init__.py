"""The local index: ingest, chunk, BM25 (SQLite FTS5) + dense vectors, hybrid query.

    from groundglass.answer.index import LocalIndex, add_sources
    index = LocalIndex.open(settings, "notes", create=True)
    add_sources(index, ["~/notes", "https://docs.example.org/"])
    index.search("how do I rotate the keys?", k=5)          # -> list[Source]

Modules: ``extract`` (files/pages -> documents), ``chunking``, ``store`` (SQLite + vectors, query),
``crawl`` (websites), ``builtin`` (embedded corpora), ``ingest`` (the pipeline).
"""

from groundglass.answer.index.documents import Document, IngestReport, Section, Skipped
from groundglass.answer.index.ingest import NothingIngestedError, add_documents, add_sources
from groundglass.answer.index.store import LocalIndex, list_indexes, remove_index

__all__ = [
    "Document",
    "IngestReport",
    "LocalIndex",
    "NothingIngestedError",
    "Section",
    "Skipped",
    "add_documents",
    "add_sources",
    "list_indexes",
    "remove_index",
]
