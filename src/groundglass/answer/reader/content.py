"""What a response's bytes are: their content type, their charset, and whether they are binary.

A type the reader cannot read is refused before its body is downloaded, and binary bytes served
under a text type are refused as soon as they show. Text is decoded by the declared charset
(header, then ``<meta>``), else UTF-8; invalid bytes become U+FFFD instead of failing the page.
"""

from __future__ import annotations

import codecs
import re

from groundglass.answer.reader.pages import ReadError

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
PDF_TYPES = {"application/pdf", "application/x-pdf"}
SNIFF_TYPES = {"", "application/octet-stream", "binary/octet-stream"}  # decide by the bytes
_BINARY_MAGIC = (
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
    b"\x7fELF",
    b"MZ",
    b"OggS",
    b"ID3",
    b"fLaC",
    b"RIFF",
    b"\x00\x00\x01\x00",
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def media_type(header: str) -> tuple[str, str | None]:
    parts = [p.strip() for p in header.split(";")]
    ctype = parts[0].lower() if parts else ""
    charset = None
    for p in parts[1:]:
        name, _, value = p.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return ctype, charset


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_body(data: bytes, charset: str | None) -> tuple[str, int]:
    """(text, number of invalid bytes replaced): the declared charset (header, then ``<meta>``), else
    UTF-8 (a BOM wins); bytes that do not decode become U+FFFD instead of failing the page."""
    if data.startswith(codecs.BOM_UTF8):
        data, codec = data[len(codecs.BOM_UTF8) :], "utf-8"
    else:
        meta = _META_CHARSET.search(data[:4096])
        in_meta = meta.group(1).decode("ascii", "ignore") if meta else None
        codec = _codec(charset) or _codec(in_meta) or "utf-8"
    try:
        return data.decode(codec), 0
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace")
        return text, text.count("\ufffd") - data.decode(codec, errors="ignore").count("\ufffd")


def looks_binary(head: bytes) -> bool:
    """Bytes that cannot be a text page: NULs, or the magic number of a common binary format."""
    return b"\x00" in head[:8192] or head.startswith(_BINARY_MAGIC)


def check_bytes(ctype: str, head: bytes) -> None:
    """Refuse a body whose first bytes contradict its type: a PDF served as HTML or text, or binary
    bytes under any text type. Raises :class:`ReadError`."""
    if ctype in PDF_TYPES or head.startswith(b"%PDF-"):
        if ctype in HTML_TYPES | TEXT_TYPES:
            raise ReadError("binary", f"a PDF file served as {ctype}")
        return
    if looks_binary(head):
        shown = ctype or "no content type"
        raise ReadError("binary", f"binary content served as {shown}")
