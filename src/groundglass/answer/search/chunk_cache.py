"""A read page's chunks on disk, keyed by the page's content, the chunk settings and the chunker's code.

Each ``groundglass ask`` is a new process, so ``rank_pages`` split every page it read again: on a long
manual page (Postfix's postconf(5): 1,150 chunks) that is 1.4-2 s of word-piece counting on the
answer's critical path, for a page the last question read too (a user's questions about their own
stack keep coming back to the same manual). Pages found here are not split again. One SQLite file
under ``settings.cache_dir`` (:class:`~groundglass.answer.search.disk_cache.DiskCache`), one row per
page (zlib-compressed JSON), at most ``MAX_ROWS`` pages, the least recently written dropped first.

The key holds everything a page's chunks depend on: the page's title, date, headings and text
(``Document.content_hash``), the chunk size and overlap, the chunker's source and the tokenizer that
counts its tokens; a change to any of them is a new key, so nothing stale is ever read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from pathlib import Path

from groundglass.answer.index.documents import Chunk
from groundglass.answer.search.disk_cache import DiskCache, code_digest
from groundglass.log import get_logger

log = get_logger(__name__)

FILE = "page-chunks.sqlite3"
MAX_ROWS = 2_000  # pages (a long manual page's chunks are ~100-300 KB compressed)


@functools.cache
def _chunker_id() -> bytes:
    """Changes with the chunker's code (and what it calls) or the tokenizer that counts its tokens."""
    from groundglass.answer import definitions, sentences
    from groundglass.answer.embeddings import model_dir
    from groundglass.answer.index import chunking, documents

    tokenizer = model_dir() / "tokenizer.json"
    return code_digest((Path(__file__), chunking, documents, definitions, sentences, tokenizer))


def key(content_hash: str, chunk_tokens: int, overlap: int) -> bytes:
    """The row of a page whose ``Document.content_hash`` is ``content_hash``, chunked with these settings."""
    h = hashlib.blake2b(_chunker_id(), digest_size=16)
    h.update(f"{content_hash}\x00{chunk_tokens}\x00{overlap}".encode())
    return h.digest()


def encode(chunks: list[Chunk]) -> bytes:
    rows = [[c.heading, c.body, c.indexed_text, c.tokens] for c in chunks]
    return zlib.compress(json.dumps(rows, ensure_ascii=False).encode("utf-8", "surrogatepass"), 1)


def decode(data: bytes) -> list[Chunk] | None:
    """The chunks ``data`` holds; None when it is not a list of chunks written by :func:`encode`."""
    try:
        rows = json.loads(zlib.decompress(data).decode("utf-8", "surrogatepass"))
        chunks = [
            Chunk(ord=i, heading=h, body=b, indexed_text=t, tokens=n) for i, (h, b, t, n) in enumerate(rows)
        ]
    except (zlib.error, UnicodeDecodeError, ValueError, TypeError) as exc:
        log.debug("chunk_cache_row_unreadable", error=repr(exc))
        return None
    ok = all(
        isinstance(c.heading, str)
        and isinstance(c.body, str)
        and isinstance(c.indexed_text, str)
        and isinstance(c.tokens, int)
        for c in chunks
    )
    return chunks if ok else None


class ChunkCache:
    def __init__(self, path: Path, max_rows: int = MAX_ROWS) -> None:
        self._store = DiskCache(path, max_rows)

    def get(self, key: bytes) -> list[Chunk] | None:
        data = self._store.get([key]).get(key)
        return None if data is None else decode(data)

    def put(self, key: bytes, chunks: list[Chunk]) -> None:
        self._store.put({key: encode(chunks)})
