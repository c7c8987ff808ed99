"""A loopback copy of the documentation with a SearXNG-speaking search API, on 127.0.0.1.

- ``GET /docs/<path>``: the pages of a folder, as a web server would serve them (``text/html``);
- ``GET /searxng/search?q=...&format=json``: SearXNG's JSON API (``results``: url, title, content,
  engine, score...), ranked by BM25 over the pages' titles and main text (SQLite FTS5, built once at
  start), with a snippet around the matching terms, as a search engine's result list looks. Without
  ``format=json`` it answers 403, as a SearXNG instance without the JSON format does.

The server is a ``ThreadingHTTPServer`` in a daemon thread; the pipelines under test run in other
processes and reach it over HTTP like any site.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bench.docqa_data import main_text

# Query words that carry no topic: left out of the FTS5 query so that BM25 ranks on the content words.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
    ]
)
MAX_RESULTS = 10


def fts_query(text: str) -> str:
    """An FTS5 query matching any of the question's content words (quoted, so no word is an operator)."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS and len(w) > 1]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class DocSearch:
    """BM25 search over the pages (SQLite FTS5, in memory)."""

    def __init__(self, root: Path, pages: Sequence[str]) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.lock = threading.Lock()
        self.db.execute(
            "CREATE VIRTUAL TABLE pages USING fts5(path UNINDEXED, title, body, tokenize='porter unicode61')"
        )
        rows = []
        for rel in pages:
            title, body = main_text(rel, root)
            rows.append((rel, title, body))
        self.db.executemany("INSERT INTO pages (path, title, body) VALUES (?, ?, ?)", rows)
        self.db.commit()

    def search(self, query: str, limit: int = MAX_RESULTS) -> list[dict[str, Any]]:
        match = fts_query(query)
        if not match:
            return []
        with self.lock:
            rows = self.db.execute(
                "SELECT path, title, snippet(pages, 2, '', '', ' … ', 32), bm25(pages, 5.0, 1.0) AS s "
                "FROM pages WHERE pages MATCH ? ORDER BY s LIMIT ?",
                (match, limit),
            ).fetchall()
        return [{"path": p, "title": t, "snippet": s, "score": -float(score)} for p, t, s, score in rows]


class DocSite:
    """The loopback site: ``base_url`` + ``/docs/<path>`` and ``searxng_url`` (the SearXNG base URL)."""

    def __init__(self, root: Path, pages: Sequence[str]) -> None:
        self.root = root.resolve()
        self.search = DocSearch(self.root, pages)
        self.searches = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/searxng/search":
                    site.searches += 1
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    if query.get("format") != "json":
                        self.send(403, b"<html><body>403 Forbidden</body></html>", "text/html")
                        return
                    hits = site.search.search(query.get("q", ""))
                    results = [
                        {
                            "url": f"{site.base_url}/docs/{h['path']}",
                            "title": h["title"],
                            "content": h["snippet"],
                            "engine": "loopback",
                            "engines": ["loopback"],
                            "score": h["score"],
                            "category": "general",
                            "publishedDate": None,
                        }
                        for h in hits
                    ]
                    body = {
                        "query": query.get("q", ""),
                        "number_of_results": len(results),
                        "results": results,
                        "answers": [],
                        "corrections": [],
                        "infoboxes": [],
                        "suggestions": [],
                        "unresponsive_engines": [],
                    }
                    self.send(200, json.dumps(body).encode(), "application/json")
                    return
                if parts.path.startswith("/docs/"):
                    target = (site.root / unquote(parts.path[len("/docs/") :])).resolve()
                    if target.is_file() and target.is_relative_to(site.root):
                        self.send(200, target.read_bytes(), "text/html; charset=utf-8")
                        return
                self.send(404, b"<html><body>404 Not Found</body></html>", "text/html")

            def send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self.searxng_url = f"{self.base_url}/searxng"
        self.docs_url = f"{self.base_url}/docs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
