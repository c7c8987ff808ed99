"""Fixtures for the browser tests: Debian's ``chromium`` driven by Python Playwright (pointed at it with
``executable_path``; Playwright's own browser downloads are never used) against real ``groundglass
serve`` processes running the tiny model (tests/server/server_helpers.py starts them).

Screenshots of the main states go to the session's ``web-screens`` folder (printed at the end).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _folder in (_TESTS / "server", _TESTS / "answer" / "vision"):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))

from server_helpers import DOCS, Server, cli, create_key, free_port, write_config  # noqa: E402
from web_helpers import Site  # noqa: E402

CHROMIUM = Path(os.environ.get("GROUNDGLASS_CHROMIUM", "/usr/bin/chromium"))
# No sandbox (tests may run as root), no GPU, and none of the background traffic a browser starts on
# its own: the tests run offline.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
]

# Presets of the test servers: short answers by default; "long" for stopping a stream mid-way;
# "broken" answers with a model endpoint where nothing listens.
PRESETS = """
[server.models.sonar]
max_tokens = 16
description = "short answers"

[server.models.long]
max_tokens = 800
description = "long answers"

[server.models.broken]
llm = "openai:nothing@http://127.0.0.1:{port}/v1"
description = "a model endpoint that is down"
"""


@pytest.fixture(scope="session")
def web_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server home with the index ``docs`` (server_helpers.DOCS) and the test presets."""
    from groundglass.answer.index.documents import Document, Section
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import load_settings

    home = tmp_path_factory.mktemp("web-home")
    settings = load_settings(write_config(home, PRESETS.format(port=free_port())), home=str(home))
    index = LocalIndex.open(settings, "docs", create=True)
    docs = [Document(uri=u, title=t, date=d, sections=[Section("", text)]) for u, t, d, text in DOCS]
    assert add_documents(index, docs).ingested == len(DOCS)
    index.close()
    return home


@pytest.fixture(scope="session")
def site(web_home: Path) -> Iterator[Site]:
    """A keyed server, with the keys the tests need."""
    s = Site(server=Server(web_home, free_port()))
    s.key = create_key(web_home, "web", rpm=100_000, tpm=100_000_000)
    s.other_key = create_key(web_home, "elsewhere", rpm=100_000, tpm=100_000_000)
    s.slow_key = create_key(web_home, "web", rpm=1, tpm=100_000_000)
    s.revoked_key = create_key(web_home, "web")
    cli(web_home, "keys", "revoke", s.revoked_key)
    s.server.start()
    try:
        yield s
    finally:
        s.server.stop()


# One browser per test file, not per session: Playwright's sync API keeps an event loop running in
# the thread until it stops, and a later test in the same process that starts a loop of its own
# (asyncio.run, anyio.run) then fails with "cannot be called from a running event loop". With the
# suite split over workers, other folders' tests run after these in the same process. (A "package"
# scope would do, but this folder is not a package, and pytest then keeps the fixture to the end.)
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install -y chromium (Debian package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extras)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("web-screens")
    yield folder
    print(f"\nscreenshots of the web page: {folder}")
