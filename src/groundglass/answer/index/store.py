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

:class:`LocalIndex` is one object with one connection and one lock: opening and checking the file,
writing documents and the three retrievers (BM25, verbatim terms, vectors) all go through them. How a
document's rows are written is :mod:`.write`; how the retrievers' hits become a query's sources
(fusion, verbatim terms first, diversity) is :mod:`.hybrid`.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from groundglass.answer.embeddings import DIM, MODEL_NAME
from groundglass.answer.index import hybrid
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
from groundglass.answer.index.write import WriteItem, write_document
from groundglass.answer.types import Source
from groundglass.errors import IndexError_, NotFoundError


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
                    outcomes.append(write_document(conn, item))
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

    def literal(self, query: str, n: int, among: Collection[int] | None = None) -> dict[int, float]:
        """Chunk id -> the weight of the query's verbatim terms (``%j``, ``--flag``, ``os.path.join``)
        and named table rows (``| dig |``) its text holds, rarer ones weighing more
        (:meth:`querytext.Verbatim.weighted`), for at most ``n`` chunks of each kind. FTS5's tokenizer
        drops or splits these terms and cannot see a row's first cell, so BM25 cannot find the one row
        of a format-code table that answers "What does %j mean?"; a substring scan can (SQLite's instr,
        then the token and row checks in Python). Without ``among``, single-cell keys are scanned for, bare
        or quoted (``| 'd' |``, as the array module's table of type codes writes them).

        ``among``: the chunks the question's words found. A key is a plain word ("code", "bytes"), and
        unrelated tables have rows of that name, so a chunk that only names a row counts when it is
        one of these (their tables are read, whatever the key's length); a verbatim term (``%j``)
        counts wherever it is."""
        from groundglass.answer import querytext

        verbatim = querytext.Verbatim.of(query)
        found: dict[int, str] = {}
        if verbatim.keys and among is not None:
            # a chunk that names a row counts only among those the question's words found; of these, the
            # ones with a table are read whole, since a key of several words ("| columns per table |
            # 1,600 |" for "the maximum number of columns in a table") cannot be scanned for as one cell
            ids = sorted(among)
            if ids:
                where = f"id IN ({','.join('?' * len(ids))}) AND instr(body, '|')"
                found.update(
                    self._sql(f"SELECT id, heading || char(10) || body FROM chunks WHERE {where}", tuple(ids))
                )
        elif verbatim.keys:
            cells = [f"| {q}{key}{q} |" for key in sorted(verbatim.keys) for q in ("", "'", '"', "`")]
            where = " OR ".join("instr(lower(body), ?) > 0" for _ in cells)
            sql = f"SELECT id, heading || char(10) || body FROM chunks WHERE {where} LIMIT ?"
            found.update(self._sql(sql, (*cells, n)))
        if verbatim.terms:
            # a chunk's heading too: Node.js's "setTimeout(callback[, delay[, ...args]])" is one
            where = " OR ".join("instr(heading || char(10) || body, ?) > 0" for _ in verbatim.scanned)
            select = "SELECT id, heading || char(10) || body FROM chunks WHERE"
            if among:
                # the chunks the question's words found are always looked at: git's manual has "-n" (or
                # "--no-...") in 871 chunks, and the scan's first n, in the order of the pages, never
                # reached git tag's "-n<num>: ... If no number is given to -n, only the first line is
                # printed.", the best fused chunk for "When git tag -n is given without a number ...?"
                ids = sorted(among)
                marks = ",".join("?" * len(ids))
                found.update(self._sql(f"{select} id IN ({marks}) AND ({where})", (*ids, *verbatim.scanned)))
            # elsewhere, only a term held by fewer than n chunks says where the answer is: the first n of
            # a common one ("sqlite3" in SQLite's manual), in the order of the pages, are no better than
            # any other n, and they took the places of SQLite's ".dump" entry
            scan = self._sql(f"{select} {where} LIMIT ?", (*verbatim.scanned, n))
            if len(scan) < n:
                found.update(scan)
        if not found:
            return {}
        ids = list(found)
        total = self._sql("SELECT count(*) FROM chunks")[0][0]
        weights = verbatim.weighted([found[i] for i in ids], total=total, short_names=True)
        return {int(ids[pos]): w for pos, w in weights.items()}

    def common_names(self, names: Iterable[str], share: float = 0.25, min_documents: int = 20) -> list[str]:
        """Those of ``names`` that at least ``share`` of the index's documents hold (as FTS5 phrases):
        what the whole collection is about, such as the product a manual documents, rather than
        the subject of one page. An index of fewer than ``min_documents`` documents has none."""
        total = self._sql("SELECT count(*) FROM documents")[0][0]
        if total < min_documents:
            return []
        out = []
        for name in names:
            phrase = '"' + name.replace('"', '""') + '"'
            held = self._sql(
                "SELECT count(DISTINCT c.doc_id) FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                "WHERE chunks_fts MATCH ?",
                (phrase,),
            )[0][0]
            if held >= share * total:
                out.append(name)
        return out

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
        """The ``k`` best chunks for ``query`` (:func:`groundglass.answer.index.hybrid.search`): ``mode``
        is hybrid (BM25 + vectors, fused), bm25 or dense."""
        return hybrid.search(self, query, k, mode, query_vector=query_vector)

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
