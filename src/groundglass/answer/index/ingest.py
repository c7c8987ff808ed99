"""Ingest sources into a :class:`LocalIndex`: files, folders, websites and built-in corpora.

A source spec is a file or folder path, an ``http(s)://`` start URL (crawled, see ``crawl.py``) or
``builtin:wikipedia``. Documents stream through extract -> chunk -> embed (batched across documents)
-> store. Unchanged documents (same content hash) are skipped before chunking or embedding; changed
ones have their chunks replaced. Each document is committed on its own (the built-in corpus in
batches), so an interrupted ingest keeps everything committed before the interruption and a rerun
of the same command continues where it stopped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundglass.answer.index import builtin
from groundglass.answer.index.chunking import chunk_document
from groundglass.answer.index.crawl import crawl
from groundglass.answer.index.documents import Chunk, Document, IngestReport, Skipped
from groundglass.answer.index.extract import SkipFile, extract_file
from groundglass.answer.index.schema import CHUNKS_VERSION
from groundglass.answer.index.store import LocalIndex
from groundglass.answer.index.write import WriteItem
from groundglass.errors import GroundglassError

BATCH_CHUNKS = 64  # chunks embedded together (across documents), then committed document by document
BULK_BATCH_CHUNKS = 256  # built-in corpora: bigger batches pad less (the encoder sorts a batch by length)


class NothingIngestedError(GroundglassError):
    """No source yielded a document; ``report`` lists what was skipped and why."""

    def __init__(self, message: str, fix: str, report: IngestReport) -> None:
        super().__init__(message, fix)
        self.report = report


@dataclass
class _Stream:
    label: str
    total: int | None
    items: Iterator[Document | Skipped]
    bulk: bool = False  # commit a whole embedding batch in one transaction


def iter_files(root: Path) -> Iterator[Path]:
    """Files under ``root`` in a stable order; hidden files and folders (``.git``...) are left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def _extract_each(paths: Iterable[Path]) -> Iterator[Document | Skipped]:
    for path in paths:
        try:
            yield extract_file(path)
        except SkipFile as exc:
            yield Skipped(str(path), str(exc))


def _open(spec: str, settings: Any) -> _Stream:
    if spec.startswith("builtin:"):
        if spec == builtin.WIKIPEDIA:
            return _Stream(spec, builtin.wikipedia_count(), builtin.wikipedia_documents(), bulk=True)
        raise GroundglassError(
            f"unknown built-in corpus {spec!r}", f"the built-in corpora are: {', '.join(builtin.BUILTINS)}"
        )
    if spec.startswith(("http://", "https://")):
        return _Stream(spec, None, crawl(spec, settings.crawl, settings.fetch))
    path = Path(spec).expanduser()
    if path.is_dir():
        files = list(iter_files(path))
        if not files:
            return _Stream(spec, 0, iter([Skipped(spec, "folder has no files")]))
        return _Stream(spec, len(files), _extract_each(files))
    if path.exists():
        return _Stream(spec, 1, _extract_each([path]))
    if "://" in spec:
        return _Stream(spec, 0, iter([Skipped(spec, "unsupported URL scheme (use http:// or https://)")]))
    return _Stream(spec, 0, iter([Skipped(spec, "no such file or folder")]))


class _Ingester:
    def __init__(self, index: LocalIndex, report: IngestReport, bar: Any) -> None:
        from groundglass.answer.embeddings import count_tokens_batch

        self.index = index
        self.report = report
        self.bar = bar
        self.count = count_tokens_batch
        r = index.settings.retrieval
        self.chunk_tokens, self.overlap = r.chunk_tokens, r.chunk_overlap
        self.salt = f"chunks={r.chunk_tokens}/{r.chunk_overlap};schema={CHUNKS_VERSION}"
        self.pending: list[tuple[Document, list[Chunk], str]] = []
        self.pending_chunks = 0
        self.seen: set[str] = set()

    def feed(self, item: Document | Skipped, bulk: bool) -> None:
        if isinstance(item, Skipped):
            self.report.skipped.append(item)
            self.bar.write(f"skipped {item.uri}: {item.reason}", file=sys.stderr)
            self.bar.update(1)
            return
        doc = item
        if doc.uri in self.seen:
            return
        self.seen.add(doc.uri)
        content_hash = doc.content_hash(self.salt)
        if self.index.document_state(doc.uri, content_hash) == "unchanged":
            self.index.redate(doc.uri, doc.last_updated)
            self.report.unchanged += 1
            self.bar.update(1)
            return
        chunks = chunk_document(doc, self.chunk_tokens, self.overlap, self.count)
        if not chunks:
            self.feed(Skipped(doc.uri, "no text to index"), bulk)
            return
        self.pending.append((doc, chunks, content_hash))
        self.pending_chunks += len(chunks)
        if self.pending_chunks >= (BULK_BATCH_CHUNKS if bulk else BATCH_CHUNKS):
            self.flush(bulk)

    def _count(self, items: list[WriteItem], outcomes: list[str]) -> None:
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome == "added":
                self.report.added += 1
            else:
                self.report.updated += 1
            self.report.chunks += len(item.chunks)

    def flush(self, bulk: bool) -> None:
        if not self.pending:
            return
        from groundglass.answer.embeddings import get_embedder

        texts = [c.indexed_text for _, chunks, _ in self.pending for c in chunks]
        vectors = get_embedder().encode(texts)
        items: list[WriteItem] = []
        at = 0
        for doc, chunks, content_hash in self.pending:
            items.append(WriteItem(doc, chunks, vectors[at : at + len(chunks)], content_hash))
            at += len(chunks)
        if bulk:
            self._count(items, self.index.write(items))
        else:
            for item in items:  # one transaction per document
                self._count([item], self.index.write([item]))
        self.bar.update(len(items))
        self.bar.set_postfix(chunks=self.report.chunks, refresh=False)
        self.pending, self.pending_chunks = [], 0


def _bar(total: int | None, label: str, progress: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=label[-40:],
        unit="doc",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
    )


def _ingest(
    index: LocalIndex, streams: Iterable[_Stream], progress: bool, report: IngestReport | None = None
) -> IngestReport:
    report = report if report is not None else IngestReport()
    started = time.perf_counter()
    try:
        for stream in streams:
            with _bar(stream.total, stream.label, progress) as bar:
                ingester = _Ingester(index, report, bar)
                for item in stream.items:
                    ingester.feed(item, stream.bulk)
                ingester.flush(stream.bulk)
    finally:
        report.seconds = time.perf_counter() - started
    if report.added or report.updated:
        index.checkpoint()
    return report


def add_sources(
    index: LocalIndex, sources: list[str], progress: bool = True, report: IngestReport | None = None
) -> IngestReport:
    """Ingest each source spec (path, folder, http(s) URL, ``builtin:wikipedia``) into ``index``.

    Raises :class:`NothingIngestedError` when no source gave a single document. Pass ``report`` to
    see how far an ingest got when it is interrupted (it is filled in as documents are committed).
    """
    if not sources:
        raise GroundglassError("no sources given", "pass files, folders, URLs or builtin:wikipedia")
    streams = [_open(spec, index.settings) for spec in sources]
    report = _ingest(index, streams, progress, report)
    if report.ingested == 0:
        if len(report.skipped) == 1:
            only = report.skipped[0]
            message = f"nothing could be ingested: {only.uri}: {only.reason}"
        else:
            first = "; ".join(f"{s.uri}: {s.reason}" for s in report.skipped[:3])
            message = f"nothing could be ingested ({len(report.skipped)} skipped: {first})"
        raise NothingIngestedError(
            message, "add HTML, Markdown, plain text or PDF files, or a website URL", report
        )
    return report


def add_documents(
    index: LocalIndex,
    documents: Iterable[Document],
    progress: bool = False,
    total: int | None = None,
    bulk: bool = True,
) -> IngestReport:
    """Ingest ready-made documents (e.g. ``builtin.wikipedia_documents(titles=[...])`` in tests)."""
    return _ingest(index, [_Stream("documents", total, iter(documents), bulk=bulk)], progress)
