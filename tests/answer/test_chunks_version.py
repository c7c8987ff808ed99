"""What an index keeps are chunks: when the chunker's output changes, ``schema.CHUNKS_VERSION`` must
change with it, since it salts each document's content hash. Without that, a document whose text did
not change keeps the old chunker's chunks on its next ``index add``: an index built before long
signatures were carried into their descriptions' chunks still had ``textwrap.wrap()``'s description
without its signature, and "the default width of textwrap.wrap()" was declined in index mode while the
web mode, chunking the page afresh, answered it.

The fingerprint is of the chunks of a fixed document in the shapes the chunker treats apart (short
sections merged, a long section packed by sentences and paragraphs, a sentence over the budget, a
definition list with a signature longer than half a budget, table row groups, list items).
"""

from __future__ import annotations

import hashlib

from groundglass.answer.embeddings import count_tokens_batch
from groundglass.answer.index.chunking import chunk_document
from groundglass.answer.index.documents import Document, Section
from groundglass.answer.index.schema import CHUNKS_VERSION

# CHUNKS_VERSION -> the fingerprint of the chunks below under it
FINGERPRINTS = {3: "33c969f693f9321c"}

_PROSE = (
    "The keeper trims the wick of each lamp at dusk and again at midnight. A lamp that smokes is taken "
    "down and cleaned before it is lit again. The oil store is checked every Monday, and the figures "
    "are written in the station's book. "
)
_SIGNATURE = "- lamp.trim(" + ", ".join(f"option_{i}={i}" for i in range(22)) + "):"


def _document() -> Document:
    long_section = "\n\n".join(_PROSE * (n % 3 + 1) for n in range(6))
    definitions = "\n".join(
        line
        for n in range(1, 7)  # a long signature at every place in a chunk, its end included
        for line in (
            f"- lamp.light{n} (integer):",
            "- Sets how bright the lamp burns. " + " ".join(_PROSE.split()[: 14 * n]) + " The default is 4.",
            _SIGNATURE.replace("trim(", f"trim{n}("),
            "- Trims the wick. " + _PROSE * 2,
        )
    )
    table = "\n\n".join(
        "| Lamp | Max hours |\n| --- | --- |\n" + "\n".join(f"| Lamp {g}{i} | {1000 + i} |" for i in range(8))
        for g in range(3)
    )
    items = "\n".join(f"- Step {i}: {_PROSE}" for i in range(5))
    return Document(
        uri="https://example.org/lamps",
        title="Lamps",
        sections=[
            Section("", "A short opening paragraph."),
            Section("Short", "Another short section."),
            Section("Long", long_section),
            Section("Over budget", " ".join(["word"] * 400) + "."),
            Section("Definitions", definitions),
            Section("Table", table),
            Section("Steps", items),
        ],
    )


def test_the_chunks_version_changes_whenever_the_chunks_do() -> None:
    chunks = chunk_document(_document(), 180, 30, count_tokens_batch)
    digest = hashlib.sha256("\x00".join(c.indexed_text for c in chunks).encode()).hexdigest()[:16]
    assert FINGERPRINTS.get(CHUNKS_VERSION) == digest, (
        "the chunker's output changed: raise CHUNKS_VERSION in groundglass/answer/index/schema.py (every "
        f"index then re-chunks its documents on their next add) and record FINGERPRINTS[<new>] = {digest!r}"
    )
