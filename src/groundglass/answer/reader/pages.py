"""What the page reader gives back: the fetched bytes, the read page, and why a URL failed.

Every failure is a :class:`ReadFailure` with a kind and a reason, so a caller can say why each URL
was not used instead of catching exceptions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from groundglass.answer.index.documents import Document
from groundglass.answer.search.images import PageImage

FailKind = Literal[
    "blocked",
    "bad_url",
    "unreachable",
    "timeout",
    "http_error",
    "redirects",
    "content_type",
    "binary",
    "too_large",
    "unreadable",
    "filtered",
]


class ReadError(Exception):
    def __init__(self, kind: FailKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class ReadFailure:
    url: str
    kind: FailKind
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FetchedPage:
    url: str  # as asked
    final_url: str  # after redirects
    status: int
    content_type: str  # media type, lower case, no parameters
    charset: str | None
    data: bytes
    truncated: bool
    redirects: int
    content_language: str | None
    seconds: float
    last_modified: str | None = None  # the Last-Modified header, as sent


@dataclass
class ReadPage:
    url: str
    final_url: str
    document: Document
    truncated: bool
    declared_language: str | None  # <html lang> or Content-Language
    replaced_bytes: int  # invalid bytes turned into U+FFFD while decoding
    seconds: float
    last_updated: str | None = None  # ISO date the page last changed, when it says (modified.py)
    images: list[PageImage] = field(default_factory=list)  # with find_images: what the page shows

    @property
    def title(self) -> str:
        return self.document.title

    @property
    def date(self) -> str | None:
        return self.document.date
