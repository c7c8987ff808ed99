"""Plain data passed between extraction, chunking and the store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass
class Section:
    """A run of text under one heading ('' when the text comes before any heading)."""

    heading: str
    text: str


@dataclass
class Document:
    """One ingested document: where it came from, its title, date and text split by headings."""

    uri: str  # file:// URI, web URL, or https://en.wikipedia.org/wiki/Title for the built-in corpus
    title: str
    sections: list[Section]
    date: str | None = None  # ISO YYYY-MM-DD when known
    kind: str = "text"  # html | markdown | text | pdf | wikipedia
    # ISO YYYY-MM-DD (UTC) the source last changed: a file's modification time, a page's Last-Modified;
    # not part of the content hash (a file touched but not changed is not re-chunked, only re-dated)
    last_updated: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text)

    def content_hash(self, salt: str = "") -> str:
        """Changes when the title, date, headings or text change (or the chunking ``salt``)."""
        h = hashlib.sha256()
        for part in (salt, self.title, self.date or ""):
            h.update(part.encode("utf-8", "surrogatepass") + b"\x00")
        for s in self.sections:
            h.update(s.heading.encode("utf-8", "surrogatepass") + b"\x01")
            h.update(s.text.encode("utf-8", "surrogatepass") + b"\x02")
        return h.hexdigest()


@dataclass
class Chunk:
    """A passage of a document: ``body`` is what the model reads, ``indexed_text`` what retrieval sees."""

    ord: int
    heading: str
    body: str
    indexed_text: str  # title + heading + body, so both retrievers see the context
    tokens: int = 0


@dataclass
class Skipped:
    """A source that could not be ingested, and why (reported to the user, never silently dropped)."""

    uri: str
    reason: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks: int = 0  # chunks written (added + updated documents)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ingested(self) -> int:
        return self.added + self.updated + self.unchanged

    def summary(self) -> str:
        line = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.skipped)} skipped ({self.chunks} chunks written in {self.seconds:.1f} s)"
        )
        return line
