"""Fixtures for the HTTP API tests (helpers live in server_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import DOCS, Api, Server, create_key, free_port, make_home, write_config


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
    home = make_home(index_home, tmp_path_factory.mktemp("api-home"), extra)
    key = create_key(home, "acme", rpm=100_000, tpm=100_000_000)
    server = Server(home, free_port()).start()
    try:
        yield Api(server, key)
    finally:
        server.stop()
