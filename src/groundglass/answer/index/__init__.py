"""The local index: ingest, chunk, BM25 (SQLite FTS5) + dense vectors, hybrid query."""
