"""One local index = one SQLite file: documents, chunks, an FTS5 table (BM25) and MiniLM vectors.

Layout: ``settings.indexes_dir / NAME / index.sqlite`` (WAL mode). Tables:

- ``meta(key, value)``: schema_version, embedding model and dimension, chunking settings,
  created/updated times and a ``generation`` counter bumped by every write;
- ``documents(id, uri, title, date, kind, content_hash, schema_version, n_chunks, added_at)``;
- ``chunks(id, doc_id, ord, heading, body, indexed_text)``;
- ``vectors(chunk_id, embedding)``: the chunk's 384-d float32 MiniLM vector as a BLOB (a table of its
  own: rows pack densely and loading the matrix reads no text pages);
- ``chunks_fts``: FTS5 over ``chunks.indexed_text`` (external content, kept in sync by triggers).

Every write (one document, or one batch of the bulk built-in corpus) is one transaction, so an ingest
stopped by Ctrl-C or ``kill -9`` leaves every finished document in place and no half-written one.

For a query the vectors are read once into a numpy matrix, cached per process and reloaded only
when ``generation`` changes (:mod:`.vectors`). Where the file lives, its SQL and the migrations from
older schemas are :mod:`.schema`.

This module stays near 450 lines because :class:`LocalIndex` is one object with one connection and
one lock: opening and checking the file, writing documents and the three retrievers (BM25, verbatim
terms, vectors) all go through them.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from groundglass.answer.embeddings import DIM, MODEL_NAME
from groundglass.answer.index.documents import Chunk, Document
from groundglass.answer.index.query import fts_match, make_snippet
from groundglass.answer.index.schema import (
    BUMP_GENERATION,
    DB_FILE,
    MIGRATIONS,
    NAME_RE,
    REQUIRED_TABLES,
    SCHEMA_VERSION,
    corrupt,
    create_schema,
    index_dir,
    now,
)
from groundglass.answer.index.vectors import VECTORS, one_blas_thread
from groundglass.answer.types import Source
from groundglass.errors import GroundglassError, IndexError_, NotFoundError

MODES = ("hybrid", "bm25", "dense")


# Chunks scanned for a query's verbatim terms: enough for a term a manual uses on a few dozen pages.
LITERAL_SCAN_MAX = 400


@dataclass
class WriteItem:
    """One document ready to store: its chunks and their vectors (``len(chunks)`` rows)."""

    doc: Document
    chunks: list[Chunk]
    vectors: np.ndarray
    content_hash: str


class LocalIndex:
    """A named local index. Open with :meth:`open`; thread-safe; close when done (or let it go)."""

    def __init__(self, name: str, path: Path, conn: sqlite3.Connection, settings: Any) -> None:
        self.name = name
        self.path = path
        self.settings = settings
        self._conn = conn
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------ open/close
    @classmethod
    def open(cls, settings: Any, name: str, *, create: bool = False) -> LocalIndex:
        folder = index_dir(settings, name)
        path = folder / DB_FILE
        if not path.exists():
            if not create:
                if folder.is_dir() and any(folder.iterdir()):
                    raise corrupt(name, folder, f"{DB_FILE} is missing")
                how = f"create it with: groundglass index add PATH --index {name}"
                if name == "default":  # what `make demo` builds: a new user's first `ask` lands here
                    how = (
                        "build it with: groundglass index add builtin:wikipedia (what `make demo` does), or "
                        + how
                    )
                raise NotFoundError(f"index '{name}' does not exist", how)
            folder.mkdir(parents=True, exist_ok=True)
            conn = cls._connect(name, path)
            create_schema(conn, settings)
        else:
            conn = cls._connect(name, path)
        index = cls(name, path, conn, settings)
        index._check()
        return index

    @staticmethod
    def _connect(name: str, path: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA page_size=8192")  # only takes effect on a new, empty file
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable against process kills
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise corrupt(name, path, str(exc)) from exc
        return conn

    def _check(self) -> None:
        try:
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")}
            if "meta" not in tables:
                raise corrupt(self.name, self.path, "no meta table")
            meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise corrupt(self.name, self.path, str(exc)) from exc
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            raise corrupt(self.name, self.path, "no schema version") from None
        if version < SCHEMA_VERSION and version in MIGRATIONS:
            self._migrate(version)
            return self._check()
        missing = REQUIRED_TABLES - tables
        if missing:
            raise corrupt(self.name, self.path, f"missing tables: {', '.join(sorted(missing))}")
        if version > SCHEMA_VERSION:
            raise IndexError_(
                f"index '{self.name}' was written by a newer groundglass (schema {version}; "
                f"this version reads schema {SCHEMA_VERSION})",
                f"upgrade groundglass, or rebuild it: groundglass index remove {self.name} --yes, "
                "then add its sources again",
            )
        if meta.get("embedding_model") != MODEL_NAME or meta.get("dim") != str(DIM):
            raise IndexError_(
                f"index '{self.name}' was built with another embedding model ({meta.get('embedding_model')})",
                f"rebuild it: groundglass index remove {self.name} --yes, then add its sources again",
            )
        self.meta = meta

    def _migrate(self, version: int) -> None:
        """Bring an index from an older schema up to date, in one transaction."""
        with self._lock:
            try:
                bump = f"UPDATE meta SET value = '{version + 1}' WHERE key = 'schema_version';\n"
                self._conn.executescript("BEGIN IMMEDIATE;\n" + MIGRATIONS[version] + bump + "COMMIT;")
            except sqlite3.DatabaseError as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise corrupt(self.name, self.path, f"cannot upgrade from schema {version}: {exc}") from exc
        self.checkpoint()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LocalIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a read query; a damaged file becomes a clear :class:`IndexError_`."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise corrupt(self.name, self.path, str(exc)) from exc

    # ----------------------------------------------------------------------------------------- write
    def document_state(self, uri: str, content_hash: str) -> str:
        """'new', 'changed' or 'unchanged' for a document about to be (re)added."""
        rows = self._sql("SELECT content_hash FROM documents WHERE uri = ?", (uri,))
        if not rows:
            return "new"
        return "unchanged" if rows[0][0] == content_hash else "changed"

    def redate(self, uri: str, last_updated: str | None) -> None:
        """Record a new ``last_updated`` for a document whose content has not changed (a file touched,
        or one added before the index kept the day); nothing when the day is unknown or the same."""
        if last_updated is None:
            return
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "UPDATE documents SET last_updated = ? WHERE uri = ? AND last_updated IS NOT ?",
                    (last_updated, uri, last_updated),
                )
                if cur.rowcount:
                    conn.execute(BUMP_GENERATION)  # what a last_updated filter keeps has changed
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise corrupt(self.name, self.path, str(exc)) from exc
                raise

    def write(self, items: Iterable[WriteItem]) -> list[str]:
        """Store documents (replacing the chunks of ones already there) in ONE transaction.

        Returns 'added' or 'updated' per item.
        """
        outcomes: list[str] = []
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                for item in items:
                    outcomes.append(self._write_one(conn, item))
                conn.execute(BUMP_GENERATION)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'updated'", (now(),))
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise corrupt(self.name, self.path, str(exc)) from exc
                raise
        return outcomes

    @staticmethod
    def _write_one(conn: sqlite3.Connection, item: WriteItem) -> str:
        doc, chunks = item.doc, item.chunks
        vectors = np.ascontiguousarray(item.vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), DIM):
            raise ValueError(f"expected {len(chunks)} vectors of {DIM} dims, got {vectors.shape}")
        row = conn.execute("SELECT id FROM documents WHERE uri = ?", (doc.uri,)).fetchone()
        if row:
            doc_id = row[0]
            conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            conn.execute(
                "UPDATE documents SET title=?, date=?, last_updated=?, kind=?, content_hash=?, "
                "schema_version=?, n_chunks=?, added_at=? WHERE id=?",
                (
                    doc.title,
                    doc.date,
                    doc.last_updated,
                    doc.kind,
                    item.content_hash,
                    SCHEMA_VERSION,
                    len(chunks),
                    now(),
                    doc_id,
                ),
            )
            outcome = "updated"
        else:
            cur = conn.execute(
                "INSERT INTO documents(uri, title, date, last_updated, kind, content_hash, schema_version, "
                "n_chunks, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc.uri,
                    doc.title,
                    doc.date,
                    doc.last_updated,
                    doc.kind,
                    item.content_hash,
                    SCHEMA_VERSION,
                    len(chunks),
                    now(),
                ),
            )
            doc_id = cur.lastrowid
            outcome = "added"
        for i, c in enumerate(chunks):
            cur = conn.execute(
                "INSERT INTO chunks(doc_id, ord, heading, body, indexed_text) VALUES (?, ?, ?, ?, ?)",
                (doc_id, c.ord, c.heading, c.body, c.indexed_text),
            )
            conn.execute(
                "INSERT INTO vectors(chunk_id, embedding) VALUES (?, ?)",
                (cur.lastrowid, vectors[i].tobytes()),
            )
        return outcome

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the main file (after a big ingest; keeps the folder compact)."""
        # busy (another process is reading): it is folded in on a later checkpoint
        with self._lock, contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def remove_document(self, uri: str) -> bool:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT id FROM documents WHERE uri = ?", (uri,)).fetchone()
                if row:
                    conn.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
                    conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
                    conn.execute(BUMP_GENERATION)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return row is not None

    # ------------------------------------------------------------------------------------------ read
    def generation(self) -> int:
        return int(self._sql("SELECT value FROM meta WHERE key = 'generation'")[0][0])

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, matrix of L2-normalised rows), cached until the index changes."""
        key = str(self.path.resolve())
        gen = self.generation()
        cached = VECTORS.get(key, gen)
        if cached is not None:
            return cached
        rows = self._sql("SELECT chunk_id, embedding FROM vectors ORDER BY chunk_id")
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if rows:
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), DIM)
        else:
            matrix = np.zeros((0, DIM), dtype=np.float32)
        VECTORS.put(key, gen, ids, matrix)
        return ids, matrix

    def bm25(self, query: str, n: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score — higher is better) for the best ``n`` chunks."""
        match = fts_match(query)
        if match is None:
            return []
        rows = self._sql(
            "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?",
            (match, n),
        )
        return [(int(r[0]), -float(r[1])) for r in rows]

    def literal(self, query: str, n: int) -> dict[int, int]:
        """Chunk id -> how many of the query's verbatim terms (``%j``, ``--flag``, ``os.path.join``)
        its text holds as whole tokens, for at most ``n`` chunks. FTS5's tokenizer drops or splits
        these terms, so BM25 cannot find the one row of a format-code table that answers "What does
        %j mean?"; a substring scan can (SQLite's instr, then the token check in Python)."""
        from groundglass.answer import querytext

        terms = querytext.literal_terms(query)
        if not terms:
            return {}
        where = " OR ".join("instr(body, ?) > 0" for _ in terms)
        rows = self._sql(f"SELECT id, heading || ' ' || body FROM chunks WHERE {where} LIMIT ?", (*terms, n))
        hits = {int(cid): querytext.literal_hits(text, terms) for cid, text in rows}
        return {cid: h for cid, h in hits.items() if h}

    def dense(self, query_vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) for the ``n`` nearest chunks."""
        ids, matrix = self.vectors()
        if len(ids) == 0:
            return []
        with one_blas_thread():
            scores = matrix @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
        n = min(n, len(ids))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(ids) else np.arange(len(ids))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def sources(self, scored: Sequence[tuple[int, float]], query: str = "") -> list[Source]:
        """Sources for (chunk id, score) pairs, in the given order."""
        if not scored:
            return []
        ids = [cid for cid, _ in scored]
        marks = ",".join("?" * len(ids))
        rows = self._sql(
            "SELECT c.id, c.doc_id, c.heading, c.body, d.uri, d.title, d.date, d.last_updated FROM chunks c "
            f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            ids,
        )
        by_id = {r[0]: r for r in rows}
        out: list[Source] = []
        for cid, score in scored:
            r = by_id.get(cid)
            if r is None:
                continue
            _, doc_id, heading, body, uri, title, date, last_updated = r
            own_heading = heading and heading.strip().lower() != title.strip().lower()
            text = f"{heading}\n{body}" if own_heading else body
            out.append(
                Source(
                    url=uri,
                    title=title,
                    text=text,
                    score=max(0.0, min(1.0, score)),
                    date=date,
                    last_updated=last_updated,
                    doc_id=str(doc_id),
                    chunk_id=str(cid),
                    snippet=make_snippet(body, query),
                )
            )
        return out

    def search(
        self, query: str, k: int, mode: str = "hybrid", *, query_vector: np.ndarray | None = None
    ) -> list[Source]:
        """The ``k`` best chunks for ``query``: ``mode`` is hybrid (BM25 + vectors, fused), bm25 or dense.

        Scores are 0..1: hybrid = the mean of the BM25 and cosine scores, each min-max scaled over its
        candidates (1 = best for both; see :mod:`groundglass.answer.rank` for why); bm25 = relative
        to the best hit; dense = cosine similarity. Near-duplicates are dropped and at most
        ``retrieval.max_per_source`` chunks of one document are kept. ``query_vector``: the query's
        embedding when the caller has it already (saves encoding it again).
        """
        from groundglass.answer import rank

        if mode not in MODES:
            raise GroundglassError(f"unknown retrieval mode {mode!r}", f"use one of: {', '.join(MODES)}")
        if k <= 0 or not query.strip():
            return []
        r = self.settings.retrieval
        n = max(r.candidates, 4 * k)
        if mode == "bm25":
            hits = self.bm25(query, n)
            best = hits[0][1] if hits and hits[0][1] > 0 else 1.0
            scored = [(cid, s / best) for cid, s in hits]
        else:
            from groundglass.answer.embeddings import get_embedder

            qvec = query_vector if query_vector is not None else get_embedder().encode([query])[0]
            dense_hits = self.dense(qvec, n)
            if mode == "dense":
                scored = dense_hits
            else:
                scored = rank.minmax_fuse([dict(self.bm25(query, n)), dict(dense_hits)])
        if mode != "dense" and (verbatim := self.literal(query, LITERAL_SCAN_MAX)):
            # a chunk that holds the question's verbatim terms comes before those that hold none (as on
            # the web path: pages.with_literal_terms), the most terms first, then by its fused score
            fused = dict(scored)
            best = max(fused.values(), default=1.0)
            ahead = sorted(verbatim, key=lambda c: (-verbatim[c], -fused.get(c, 0.0)))
            scored = [(c, max(fused.get(c, 0.0), best)) for c in ahead] + [
                (c, sc) for c, sc in scored if c not in verbatim
            ]
        # Build sources for the best candidates only, a batch at a time, until k survive the filters.
        step = 2 * k + 10
        built: list[Source] = []
        kept: list[Source] = []
        for start in range(0, len(scored), step):
            built += self.sources(scored[start : start + step], query)
            kept = rank.diversify(rank.dedupe(built), r.max_per_source)
            if len(kept) >= k:
                break
        return kept[:k]

    def stats(self) -> dict[str, Any]:
        docs, chunks = self._sql("SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)")[0]
        kinds = dict(self._sql("SELECT kind, COUNT(*) FROM documents GROUP BY kind ORDER BY kind"))
        size = sum(p.stat().st_size for p in self.path.parent.glob(DB_FILE + "*") if p.is_file())
        meta = dict(self._sql("SELECT key, value FROM meta"))
        return {
            "name": self.name,
            "path": str(self.path),
            "documents": docs,
            "chunks": chunks,
            "kinds": kinds,
            "size_bytes": size,
            "schema_version": int(meta["schema_version"]),
            "embedding_model": meta.get("embedding_model"),
            "chunk_tokens": int(meta.get("chunk_tokens", 0)),
            "chunk_overlap": int(meta.get("chunk_overlap", 0)),
            "created": meta.get("created"),
            "updated": meta.get("updated"),
        }

    def integrity(self) -> str:
        """'ok' or SQLite's first complaint (reads the whole file)."""
        return str(self._sql("PRAGMA quick_check(1)")[0][0])


def list_indexes(settings: Any) -> list[str]:
    """Names of the indexes under ``settings.indexes_dir``."""
    root = Path(settings.indexes_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and NAME_RE.match(p.name) and (p / DB_FILE).exists()
    )


def remove_index(settings: Any, name: str) -> None:
    """Delete an index folder; :class:`NotFoundError` when there is none."""
    folder = index_dir(settings, name)
    if not folder.is_dir():
        raise NotFoundError(f"index '{name}' does not exist", "see the indexes with: groundglass index list")
    VECTORS.drop(str((folder / DB_FILE).resolve()))
    shutil.rmtree(folder)
