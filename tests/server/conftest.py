"""Fixtures for the HTTP API tests (helpers live in server_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import DOCS, KB, Api, Server, create_key, free_port, make_home, write_config

# The loopback web site and search API (tests/answer/loopback_web.py) and the rendered screenshots and
# image server (tests/answer/vision/) serve the image and web-search tests here too.
_TESTS = Path(__file__).resolve().parents[1]
for _folder in (_TESTS / "answer", _TESTS / "answer" / "vision"):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))


@pytest.fixture(scope="session")
def index_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home folder holding the index ``docs`` (built once per session) and a config file."""
    from groundglass.answer.index.documents import Document, Section
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import load_settings

    home = tmp_path_factory.mktemp("server-index")
    settings = load_settings(write_config(home), home=str(home))
    index = LocalIndex.open(settings, "docs", create=True)
    docs = [Document(uri=u, title=t, date=d, sections=[Section("", text)]) for u, t, d, text in DOCS]
    report = add_documents(index, docs)
    index.close()
    assert report.ingested == len(DOCS)
    return home


@pytest.fixture(scope="session")
def api(index_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One keyed server for the session, and a key for project 'acme'."""
    # "broken": a preset whose model endpoint is down (nothing listens on that port), for failure paths.
    extra = f'[server.models.broken]\nllm = "openai:nothing@http://127.0.0.1:{free_port()}/v1"\n'
    # 1 MB bodies (not the 70 MB default, sized for images) so that the 413 tests stay small
    home = make_home(index_home, tmp_path_factory.mktemp("api-home"), extra, max_body_bytes=1_000_000)
    key = create_key(home, "acme", rpm=100_000, tpm=100_000_000)
    server = Server(home, free_port()).start()
    try:
        yield Api(server, key)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def loopback_web() -> Iterator[tuple[Any, Any]]:
    """(WebSite, SearchAPI): a web site and a search API speaking SearXNG's and Tavily's wire formats,
    on 127.0.0.1 (tests/answer/loopback_web.py). Tests that change ``api.mode`` reset it."""
    from loopback_web import SearchAPI, WebSite

    site = WebSite()
    search = SearchAPI(site.base_url)
    try:
        yield site, search
    finally:
        search.close()
        site.close()


@pytest.fixture
def web(loopback_web: tuple[Any, Any]) -> Iterator[tuple[Any, Any]]:
    """The loopback site and search API, every provider healthy, counters at zero."""
    site, search = loopback_web
    site.reset()
    search.reset()
    yield site, search
    search.reset()


@pytest.fixture(scope="session")
def corpus_api(tmp_path_factory: pytest.TempPathFactory, loopback_web: tuple[Any, Any]) -> Iterator[Api]:
    """A keyed server for images and web search, with the default body and image limits.

    ``sonar`` answers from the index ``docs`` holding the vision tests' corpus (an error's fix,
    Zermatt, espresso... at ``KB + stem``); ``sonar-web`` searches the web: the loopback SearXNG,
    then Tavily (failover), whose pages the reader may fetch from 127.0.0.1 only. ``search_mode``
    ``academic`` is configured to allow 127.0.0.1, ``sec`` keeps its default (sec.gov).
    """
    from loopback_web import TAVILY_KEY
    from vision_screens import SEARCH_CORPUS

    from groundglass.answer.index.documents import Document, Section
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import load_settings

    _, search = loopback_web
    home = tmp_path_factory.mktemp("corpus-api")
    extra = f"""
[server.models.sonar-web]
source = "web"
description = "sonar over the web (the loopback search API)"

[server.search_modes]
academic = ["127.0.0.1"]

[search.searxng]
base_url = "{search.url("searxng")}"

[search.tavily]
base_url = "{search.url("tavily")}"
api_key = "{TAVILY_KEY}"

[fetch]
allowed_networks = ["127.0.0.1/32"]
per_host_delay_s = 0.0
per_host_concurrency = 8
timeout_s = 5.0
max_bytes = 300000
"""
    config = write_config(
        home, extra, search={"providers": ["searxng", "tavily"], "cache_ttl_s": 0, "timeout_s": 10.0}
    )
    settings = load_settings(config, home=str(home))
    index = LocalIndex.open(settings, "docs", create=True)
    docs = [
        Document(
            uri=KB + name.removesuffix(".md"),
            title=text.splitlines()[0].lstrip("# "),
            date=None,
            sections=[Section("", text)],
        )
        for name, text in SEARCH_CORPUS.items()
    ]
    report = add_documents(index, docs)
    index.close()
    assert report.added == len(SEARCH_CORPUS)
    key = create_key(home, "vision", rpm=100_000, tpm=100_000_000)
    server = Server(home, free_port()).start()
    try:
        yield Api(server, key)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server of its own for the test module (Debian's initdb), stopped after it."""
    from postgres_server import PostgresServer, postgres_bin  # needs psycopg: the dev extras

    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb): apt-get install -y postgresql (Debian package)")
    server = PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()
