"""The Responses API's ``fetch_url`` tool (Perplexity's Agent API): the answer reads the pages whose
URLs the question gives.

There is no model-driven tool loop here, so the tool's call is made for the model: the http(s) URLs
written in the last user message (up to the tool's ``max_urls``, in order, without repeats) are read
by the page reader, under its address checks (``fetch.allow_private``, ``fetch.allowed_networks``),
size cap and timeouts, and each page's passages (``retrieval.chunk_tokens`` long, as web pages are
read) are offered to the engine as sources from before this turn: it answers from them when they
answer the question and searches otherwise, keeping those still relevant beside what it finds. The
tool therefore rides with a ``web_search`` tool. Its ``fetch_url_results`` output item lists each
page read (``url``, ``title``, ``snippet``) and each URL that could not be read (``error``: why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from groundglass.answer.types import Source

if TYPE_CHECKING:
    from groundglass.config import Settings

DEFAULT_MAX_URLS = 3  # URLs read when the tool does not say
MAX_URLS = 10
MAX_PASSAGES_PER_PAGE = 24  # as search.max_chunks_per_page: the most of one page offered
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)


def urls_in(text: str, limit: int) -> list[str]:
    """The first ``limit`` distinct http(s) URLs of ``text`` (trailing punctuation left out)."""
    out: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)]}")
        if url not in out:
            out.append(url)
        if len(out) >= limit:
            break
    return out


@dataclass
class Fetched:
    """What the tool read: the pages' passages as sources, and the output item's contents."""

    sources: list[Source] = field(default_factory=list)
    contents: list[dict[str, Any]] = field(default_factory=list)

    def item(self, id: str) -> dict[str, Any] | None:
        return {"id": id, "type": "fetch_url_results", "contents": self.contents} if self.contents else None


async def fetch_urls(settings: Settings, urls: list[str], question: str) -> Fetched:
    """Read ``urls`` (all of them, in order) into :class:`Fetched`."""
    from groundglass.answer.embeddings import count_tokens_batch
    from groundglass.answer.index.chunking import chunk_document
    from groundglass.answer.index.query import make_snippet
    from groundglass.answer.reader import PageReader

    out = Fetched()
    if not urls:
        return out
    async with PageReader(settings.fetch) as reader:
        pages, failures = await reader.read_many(urls)
    read = {page.url: page for page in pages}
    why = {f.url: f.reason for f in failures}
    r = settings.retrieval
    for n, url in enumerate(urls):
        page = read.get(url)
        if page is None:
            error = why.get(url, "not read")
            out.contents.append({"url": url, "title": "", "snippet": "", "error": error})
            continue
        chunks = chunk_document(page.document, r.chunk_tokens, r.chunk_overlap, count_tokens_batch)
        out.contents.append(
            {
                "url": page.final_url,
                "title": page.title,
                "snippet": make_snippet(page.document.text, question),
            }
        )
        for chunk in chunks[:MAX_PASSAGES_PER_PAGE]:
            own = chunk.heading and chunk.heading.strip().lower() != page.title.strip().lower()
            out.sources.append(
                Source(
                    url=page.final_url,
                    title=page.title,
                    text=f"{chunk.heading}\n{chunk.body}" if own else chunk.body,
                    score=1.0,
                    date=page.date,
                    doc_id=f"fetched{n}",
                    chunk_id=f"fetched{n}-{chunk.ord}",
                    snippet=make_snippet(chunk.body, question),
                    source="web",
                    last_updated=page.last_updated,
                )
            )
    return out
