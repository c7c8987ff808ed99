"""Real HTTP servers on 127.0.0.1 for the web-search tests and the web benchmark.

- :class:`WebSite`: serves the pages in ``tests/data/web`` (real-looking HTML with navigation,
  cookie banners, comments and footers around a known article), a generated PDF, a plain-text file,
  and the faulty cases: a huge page, an endless stream, a trickling page, a hanging page, a
  redirect loop and chain, redirects to private/metadata/file addresses, binary data served as
  HTML, a PDF served as HTML, invalid UTF-8, an image, HTTP errors.
- :class:`SearchAPI`: speaks the wire formats of SearXNG (``GET /searxng/search?format=json``),
  Brave (``GET /brave/res/v1/web/search`` + ``X-Subscription-Token``), Tavily (``POST
  /tavily/search`` + ``Authorization: Bearer``) and DuckDuckGo's HTML endpoint (``POST /ddg/html/``),
  returning URLs of the web site. ``api.mode[provider]`` switches a provider into a fault
  (``malformed``, ``429``, ``500``, ``503``, ``hang``, ``empty``, ``html``); ``api.hits`` counts
  requests per provider.

Both are ``http.server.ThreadingHTTPServer`` instances in daemon threads.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

WEB_DIR = Path(__file__).resolve().parents[1] / "data" / "web"
BRAVE_KEY = "brave-test-key"
TAVILY_KEY = "tvly-test-key"
HANG_S = 4.0  # how long "hanging" endpoints stall (tests use shorter timeouts)


# ------------------------------------------------------------------------------------------------ PDF


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str], title: str, created: str = "D:20240115093000Z") -> bytes:
    """A small valid one-page PDF with a real text layer (Helvetica), built by hand."""
    text_ops = " T* ".join(f"({_pdf_escape(line)}) Tj" for line in lines)
    content = f"BT /F1 11 Tf 72 740 Td 15 TL {text_ops} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Title ({_pdf_escape(title)}) /CreationDate ({created}) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


REPORT_PDF = make_pdf(
    [
        "Annual report of the Lighthouse Board, 1883",
        "The Board reports that the new Eddystone Lighthouse designed by James Douglass",
        "was completed in 1882 and shows a white light visible for seventeen miles.",
        "The old tower by John Smeaton has been taken down to its base and its upper part",
        "re-erected on Plymouth Hoe by public subscription.",
    ],
    title="Lighthouse Board annual report 1883",
)


# ----------------------------------------------------------------------------------------- servers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def send_json(handler: BaseHTTPRequestHandler, value: Any, status: int = 200) -> None:
    """Answer ``handler``'s request with ``value`` as a JSON body."""
    raw = json.dumps(value).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (a free port) in a daemon thread; counts requests by path."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.stop = threading.Event()
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    def count(self, key: str) -> None:
        with self.lock:
            self.hits[key] += 1

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def owner(self) -> Any:
        return self.server.owner  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def redirect(self, location: str, status: int = 302) -> None:
        self.send(status, b"", "text/html", {"Location": location})

    def stream_forever(self, ctype: str, piece: bytes, pause: float = 0.0, limit_s: float = 60.0) -> None:
        """A close-delimited body that never ends (until the client hangs up or limit_s passes)."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Connection", "close")
        self.end_headers()
        deadline = time.monotonic() + limit_s
        try:
            while time.monotonic() < deadline and not self.owner.stop.is_set():
                self.wfile.write(piece)
                if pause:
                    self.wfile.flush()
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass


# ----------------------------------------------------------------------------------------- web site

BAD_UTF8 = (
    b"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Broken bytes page</title>"
    b"</head><body><article><h1>Broken bytes page</h1><p>This page about the Eddystone lighthouse "
    b"was saved with a broken encoder: caf\xe9 \xff\xfe na\xefve \xc3\x28 and still has "
    b"readable text about Smeaton's tower and its granite blocks, which were dovetailed together.</p>"
    b"</article></body></html>"
)
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
# .html files say when they last changed (search_results[].last_updated); other files do not
LAST_MODIFIED = "Tue, 04 Jun 2024 10:00:00 GMT"


def real_png(width: int, height: int) -> bytes:
    """A decodable PNG of that size (Pillow), for images whose size must be measured."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(out, format="PNG")
    return out.getvalue()


# /gallery.html: a page with images for return_images: an og:image and an <img> sized by the page, one
# to measure, and four never returned (a tracking pixel, a private address, not an image, a data: URI)
GALLERY_HTML = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Eddystone photographs | Coastal Heritage Blog</title>
<meta property="og:image" content="/photos/cover.jpg">
<meta property="og:image:width" content="1200"><meta property="og:image:height" content="630">
<meta property="og:image:alt" content="The coast near Plymouth at dusk">
</head><body><article><h1>Eddystone photographs</h1>
<p>Our gallery collects photographs of the Eddystone lighthouses taken over a century. The granite
tower built by James Douglass in 1882 still stands on the rocks, fourteen miles off Plymouth.</p>
<figure><img src="/photos/smeaton.png" alt="Smeaton's Tower">
<figcaption>Smeaton's Eddystone lighthouse tower, re-erected on Plymouth Hoe in 1884.</figcaption></figure>
<p>The keepers lived in the tower for weeks at a time; the photographs show their rooms.</p>
<p><img src="/photos/keeper.jpg" alt="A keeper in the lantern room" width="640" height="480"></p>
<img src="/photos/pixel.gif" width="1" height="1" alt="">
<img src="http://10.0.0.1/smeaton.png" alt="Smeaton's tower from the sea" width="300" height="200">
<img src="/photos/not-an-image.png" alt="Smeaton's tower at night">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="Smeaton's tower, inline">
</article></body></html>"""
SMEATON_PNG = real_png(120, 80)
# Brave's image results for the gallery, by path on the site
BRAVE_IMAGES = {
    "/photos/lantern.jpg": {
        "type": "image_result",
        "title": "The keeper's lantern room at night",
        "source": "127.0.0.1",
        "thumbnail": {"src": "https://imgs.search.brave.com/x", "width": 200, "height": 150},
        "properties": {"placeholder": "https://imgs.search.brave.com/y", "width": 800, "height": 600},
    }
}
# SearXNG's image results for the gallery (paths on the site; one on a private address, never returned)
SEARXNG_IMAGES = [
    {
        "img_src": "/photos/storm.jpg",
        "title": "Smeaton's tower in a storm",
        "content": "A winter storm at the Eddystone rocks.",
        "resolution": "640 x 427",
        "category": "images",
        "template": "images.html",
    },
    {
        "img_src": "http://192.168.1.5/smeaton-tower.jpg",
        "title": "Smeaton's tower",
        "content": "",
        "resolution": "800 x 600",
        "category": "images",
        "template": "images.html",
    },
]


class SiteHandler(_Handler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.owner.count(path)
        port = self.owner.port
        if path in ("/", "/index.html"):
            links = "".join(f'<li><a href="/{p.name}">{p.stem}</a></li>' for p in sorted(WEB_DIR.iterdir()))
            self.send(200, f"<!DOCTYPE html><html><body><ul>{links}</ul></body></html>".encode(), "text/html")
        elif path == "/report.pdf":
            self.send(200, REPORT_PDF, "application/pdf")
        elif path == "/pdf-as-html":
            self.send(200, REPORT_PDF, "text/html; charset=utf-8")
        elif path == "/binary-as-html":
            self.send(200, PNG_BYTES, "text/html; charset=utf-8")
        elif path == "/image.png":
            self.send(200, PNG_BYTES, "image/png")
        elif path == "/gallery.html":
            self.send(200, GALLERY_HTML.encode(), "text/html; charset=utf-8")
        elif path == "/photos/smeaton.png":
            self.send(200, SMEATON_PNG, "image/png")
        elif path == "/photos/not-an-image.png":
            self.send(200, b"<html><body>not found</body></html>", "text/html")
        elif path == "/bad-utf8.html":
            self.send(200, BAD_UTF8, "text/html; charset=utf-8")
        elif path == "/huge":
            self.huge()
        elif path == "/endless":
            self.stream_forever("text/html", b"<p>more lighthouse text that never ends</p>\n" * 200)
        elif path == "/drip":
            self.stream_forever("text/html", b"<p>", pause=0.2)
        elif path == "/slow":
            self.owner.stop.wait(HANG_S)
            self.send(200, b"<html><body>too late</body></html>", "text/html")
        elif path.startswith("/loop/"):
            self.redirect("/loop/b" if path == "/loop/a" else "/loop/a")
        elif path.startswith("/chain/"):
            n = int(path.rsplit("/", 1)[1])
            self.redirect(f"/chain/{n - 1}" if n > 0 else "/lighthouses.html", 301)
        elif path == "/to-private":
            self.redirect(f"http://127.0.0.2:{port}/lighthouses.html")
        elif path == "/to-metadata":
            self.redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self.redirect("file:///etc/passwd")
        elif path == "/moved":
            self.redirect("/lighthouses.html", 301)
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self.send(code, f"<html><body>error {code}</body></html>".encode(), "text/html")
        elif path.startswith("/copy/"):  # /copy/N/NAME: the page NAME under many URLs (the benchmark)
            name = path.split("/", 3)[3]
            self.file(WEB_DIR / name)
        else:
            self.file(WEB_DIR / path.lstrip("/"))

    def file(self, target: Path) -> None:
        target = target.resolve()
        if WEB_DIR not in target.parents or not target.is_file():
            self.send(404, b"<html><body>not found</body></html>", "text/html")
            return
        ctype = {".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8"}.get(
            target.suffix, "application/octet-stream"
        )
        headers = {"Last-Modified": LAST_MODIFIED} if target.suffix == ".html" else {}
        self.send(200, target.read_bytes(), ctype, headers)

    def huge(self) -> None:
        piece = b"<p>" + b"The lighthouse keeper polished the great lens once more. " * 30 + b"</p>\n"
        total = 20_000_000
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(total))
        self.end_headers()
        head = b"<!DOCTYPE html><html><head><title>Huge page</title></head><body><article><h1>Huge page</h1>"
        try:
            self.wfile.write(head)
            sent = len(head)
            while sent + len(piece) <= total and not self.owner.stop.is_set():
                self.wfile.write(piece)
                sent += len(piece)
            self.wfile.write(b" " * (total - sent))
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


class WebSite(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(SiteHandler)


# ---------------------------------------------------------------------------------------- search API


@dataclass(frozen=True)
class Entry:
    path: str
    title: str
    snippet: str
    date: str | None
    language: str
    keywords: frozenset[str]


def _entry(path: str, title: str, snippet: str, date: str | None, language: str, keywords: str) -> Entry:
    return Entry(path, title, snippet, date, language, frozenset(keywords.split()))


CATALOGUE = [
    _entry(
        "/lighthouses.html",
        "The Eddystone Lighthouse: four towers on one rock",
        "Four lighthouses have stood on the Eddystone Rocks off Plymouth.",
        "2024-05-10T09:30:00",
        "en",
        "eddystone lighthouse lighthouses smeaton tower plymouth built",
    ),
    _entry(
        "/injection.html",
        "A lighthouse keeper's logbook, 1891",
        "The keepers of the Eddystone Lighthouse wrote in the logbook every four hours.",
        None,
        "en",
        "eddystone lighthouse lighthouses keeper keepers logbook built",
    ),
    _entry(
        "/lens.html",
        "Fresnel lens - Maritime Wiki",
        "A Fresnel lens is a compact lens made of rings.",
        "2023-11-20T00:00:00",
        "en",
        "lighthouse lighthouses lens fresnel optics",
    ),
    _entry(
        "/fog-signals.html",
        "Fog signals",
        "When fog hides a light, mariners rely on sound.",
        None,
        "en",
        "lighthouse lighthouses fog signal signals",
    ),
    _entry(
        "/leuchtturm.html",
        "Der Leuchtturm Roter Sand",
        "Der Leuchtturm Roter Sand steht in der Außenweser.",
        "2024-06-01T06:00:00",
        "de",
        "leuchtturm lighthouse lighthouses roter sand",
    ),
    _entry(
        "/keepers.txt",
        "Lighthouse keepers",
        "Before automation, every major lighthouse had keepers.",
        None,
        "en",
        "lighthouse lighthouses keeper keepers eddystone",
    ),
    _entry(
        "/report.pdf",
        "Annual report of the Lighthouse Board, 1883",
        "The new Eddystone Lighthouse designed by James Douglass was completed in 1882.",
        None,
        "en",
        "eddystone lighthouse lighthouses report board douglass built",
    ),
    _entry(
        "/gallery.html",
        "Eddystone photographs",
        "Our gallery collects photographs of the Eddystone lighthouses.",
        None,
        "en",
        "gallery photographs",
    ),
    _entry(
        "/tides.html",
        "How tides work",
        "Tides are the regular rise and fall of the sea surface.",
        "2019-03-02T12:00:00",
        "en",
        "tide tides moon sea",
    ),
]
FAULTS = [
    "/huge",
    "/endless",
    "/loop/a",
    "/binary-as-html",
    "/bad-utf8.html",
    "/image.png",
    "/slow",
    "/to-private",
    "/status/500",
    "/pdf-as-html",
    "/lighthouses.html",
]


def lookup(query: str, site: str) -> list[dict[str, Any]]:
    """Catalogue entries (as plain dicts with absolute URLs) matching any word of ``query``.

    The word ``faults`` returns the faulty pages (and one good one, last)."""
    words = {w.strip("?.,!").lower() for w in query.split()}
    if "faults" in words:
        return [
            {"url": site + p, "title": f"Fault {p}", "snippet": "", "date": None, "language": "en"}
            for p in FAULTS
        ]
    return [
        {"url": site + e.path, "title": e.title, "snippet": e.snippet, "date": e.date, "language": e.language}
        for e in CATALOGUE
        if e.keywords & words
    ]


class SearchHandler(_Handler):
    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def route(self, method: str) -> None:
        parts = urlsplit(self.path)
        provider = parts.path.strip("/").split("/", 1)[0]
        api: SearchAPI = self.owner
        api.count(provider)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        api.requests.append(
            {
                "provider": provider,
                "method": method,
                "path": parts.path,
                "query": query,
                "body": raw.decode("utf-8", "replace"),
                "headers": dict(self.headers),
            }
        )
        mode = api.mode.get(provider, "ok")
        if mode == "hang":
            api.stop.wait(HANG_S)
            mode = "ok"
        if mode in ("429", "500", "503"):
            self.send(int(mode), b'{"error": "unavailable"}', "application/json")
            return
        if mode == "malformed":
            self.send(200, b'{"results": [{"url": "http://127.0.0.1/", "title": ', "application/json")
            return
        if mode == "html":
            self.send(200, b"<html><body>Captcha: are you a robot?</body></html>", "text/html")
            return
        routes = {"searxng": self.searxng, "brave": self.brave, "tavily": self.tavily, "ddg": self.ddg}
        handler = routes.get(provider)
        if handler is None:
            self.send(404, b'{"error": "no such endpoint"}', "application/json")
            return
        handler(method, parts.path, query, raw, empty=(mode == "empty"))

    def hits_for(self, q: str, empty: bool) -> list[dict[str, Any]]:
        return [] if empty else lookup(q, self.owner.site_url)

    def json(self, data: Any, status: int = 200) -> None:
        self.send(status, json.dumps(data).encode(), "application/json")

    def searxng(self, method: str, path: str, query: dict[str, str], raw: bytes, empty: bool) -> None:
        if method != "GET" or path != "/searxng/search":
            self.json({"error": "not found"}, 404)
            return
        if query.get("format") != "json":
            self.send(403, b"<html><body>403 Forbidden</body></html>", "text/html")
            return
        q = query.get("q", "")
        if query.get("categories") == "images":  # the images category: the gallery's, by SearXNG
            results = [
                {**image, "img_src": urljoin(self.owner.site_url, image["img_src"]), "url": h["url"]}
                for h in self.hits_for(q, empty)
                if h["url"].endswith("/gallery.html")
                for image in SEARXNG_IMAGES
            ]
            self.json({"query": q, "number_of_results": len(results), "results": results})
            return
        results = [
            {
                "url": h["url"],
                "title": h["title"],
                "content": h["snippet"],
                "publishedDate": h["date"],
                "engine": "loopback",
                "engines": ["loopback"],
                "score": 1.0 / (i + 1),
                "category": "general",
            }
            for i, h in enumerate(self.hits_for(q, empty))
        ]
        self.json(
            {
                "query": q,
                "number_of_results": len(results),
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )

    def brave(self, method: str, path: str, query: dict[str, str], raw: bytes, empty: bool) -> None:
        if path not in ("/brave/res/v1/web/search", "/brave/res/v1/images/search"):
            self.json({"error": "not found"}, 404)
            return
        if self.headers.get("X-Subscription-Token") != BRAVE_KEY:
            error = {
                "code": "SUBSCRIPTION_TOKEN_INVALID",
                "status": 401,
                "detail": "The provided subscription token is invalid.",
            }
            self.json({"type": "ErrorResponse", "error": error}, 401)
            return
        q = query.get("q", "")
        if path.endswith("/images/search"):  # Brave's image search: the gallery's
            images = [
                {
                    **image,
                    "url": h["url"],
                    "properties": {**image["properties"], "url": self.owner.site_url + src},
                }
                for h in self.hits_for(q, empty)
                if h["url"].endswith("/gallery.html")
                for src, image in BRAVE_IMAGES.items()
            ]
            self.json({"type": "images", "query": {"original": q}, "results": images})
            return
        results = [
            {
                "type": "search_result",
                "title": h["title"],
                "url": h["url"],
                "description": h["snippet"],
                "page_age": h["date"],
                "language": h["language"],
                "family_friendly": True,
            }
            for h in self.hits_for(q, empty)
        ]
        body: dict[str, Any] = {"type": "search", "query": {"original": q}, "mixed": {"type": "mixed"}}
        if results:
            body["web"] = {"type": "search", "results": results, "family_friendly": True}
        self.json(body)

    def tavily(self, method: str, path: str, query: dict[str, str], raw: bytes, empty: bool) -> None:
        if method != "POST" or path != "/tavily/search":
            self.json({"detail": {"error": "not found"}}, 404)
            return
        if self.headers.get("Authorization") != f"Bearer {TAVILY_KEY}":
            self.json({"detail": {"error": "Unauthorized: missing or invalid API key."}}, 401)
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self.json({"detail": {"error": "invalid JSON"}}, 400)
            return
        hits = self.hits_for(str(body.get("query", "")), empty)
        results = [
            {
                "title": h["title"],
                "url": h["url"],
                "content": h["snippet"],
                "score": 0.9 - i * 0.05,
                "raw_content": None,
            }
            for i, h in enumerate(hits)
        ][: int(body.get("max_results", 5))]
        self.json(
            {
                "query": body.get("query"),
                "answer": None,
                "images": [],
                "follow_up_questions": None,
                "results": results,
                "response_time": 0.42,
            }
        )

    def ddg(self, method: str, path: str, query: dict[str, str], raw: bytes, empty: bool) -> None:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        q = form.get("q", "") or query.get("q", "")
        items = []
        for h in self.hits_for(q, empty):
            href = escape(h["url"], quote=True)
            items.append(
                '<div class="result results_links results_links_deep web-result ">'
                '<div class="links_main links_deep result__body">'
                f'<h2 class="result__title"><a rel="nofollow" class="result__a" href="{href}">'
                f"{escape(h['title'])}</a></h2>"
                '<div class="result__extras"><div class="result__extras__url">'
                f'<a class="result__url" href="{href}">{href}</a></div></div>'
                f'<a class="result__snippet" href="{href}">{escape(h["snippet"])}</a>'
                '<div class="clear"></div></div></div>'
            )
        if not items:
            items.append('<div class="no-results">No results.</div>')
        page = (
            "<!DOCTYPE html><html><head><title>" + escape(q) + " at DuckDuckGo</title></head><body>"
            '<div id="links" class="results">' + "".join(items) + "</div></body></html>"
        )
        self.send(200, page.encode(), "text/html; charset=UTF-8")


class SearchAPI(LoopbackServer):
    def __init__(self, site_url: str) -> None:
        super().__init__(SearchHandler)
        self.site_url = site_url
        self.mode: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []

    def reset(self) -> None:
        super().reset()
        self.mode.clear()
        self.requests.clear()

    def url(self, provider: str) -> str:
        return {
            "searxng": f"{self.base_url}/searxng",
            "brave": f"{self.base_url}/brave/res/v1",
            "tavily": f"{self.base_url}/tavily",
            "duckduckgo": f"{self.base_url}/ddg/html/",
        }[provider]


def search_settings(
    home: Path, api: SearchAPI, providers: list[str], fetch: dict[str, Any] | None = None, **search: Any
) -> Any:
    """Settings whose providers all point at ``api`` and whose page reader may fetch from 127.0.0.1 only
    (``fetch`` changes or adds ``[fetch]`` keys)."""
    from groundglass.config import Settings

    fetching = {
        "allowed_networks": ["127.0.0.1/32"],
        "per_host_delay_s": 0.0,
        "per_host_concurrency": 8,
        "timeout_s": 3.0,
        "max_bytes": 300_000,
        **(fetch or {}),
    }
    data = {
        "home": str(home),
        "search": {
            "providers": providers,
            "timeout_s": 1.5,
            "searxng": {"base_url": api.url("searxng")},
            "brave": {"base_url": api.url("brave"), "api_key": BRAVE_KEY},
            "tavily": {"base_url": api.url("tavily"), "api_key": TAVILY_KEY},
            "duckduckgo": {"base_url": api.url("duckduckgo")},
            **search,
        },
        "fetch": fetching,
    }
    return Settings.model_validate(data)
