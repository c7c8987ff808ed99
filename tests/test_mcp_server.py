"""``groundglass mcp`` over stdio and streamable HTTP, driven by the official MCP SDK's own client: the
tools are listed, ``index_search`` and ``ask`` answer from a real local index with the tiny model, bad
input is a tool error that says what to do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

EIFFEL = "https://en.wikipedia.org/wiki/Eiffel_Tower"
DOCS = [
    (
        EIFFEL,
        "Eiffel Tower",
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was "
        "completed in 1889 and is 330 metres tall.",
    ),
    (
        "https://en.wikipedia.org/wiki/Mount_Etna",
        "Mount Etna",
        "Mount Etna is an active volcano on the east coast of Sicily, Italy, one of the tallest in Europe.",
    ),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from groundglass.answer.index.documents import Document, Section
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import load_settings

    home = tmp_path_factory.mktemp("mcp-home")
    (home / "config.toml").write_text(
        f'home = "{home}"\n[llm]\nmodel = "tiny"\nmax_tokens = 24\n[retrieval]\nindex = "docs"\n'
        '[search]\nproviders = ["local"]\ntimeout_s = 120.0\n',
        encoding="utf-8",
    )
    settings = load_settings(home / "config.toml", home=str(home))
    index = LocalIndex.open(settings, "docs", create=True)
    add_documents(index, [Document(uri=u, title=t, date=None, sections=[Section("", x)]) for u, t, x in DOCS])
    index.close()
    return home


def groundglass() -> str:
    script = Path(sys.executable).parent / "groundglass"
    assert script.exists(), script
    return str(script)


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GROUNDGLASS_MODEL"}
    env.update(
        {
            "GROUNDGLASS_HOME": str(home),
            "GROUNDGLASS_CONFIG": str(home / "config.toml"),
            "HF_HUB_OFFLINE": "1",
            "GROUNDGLASS_LOG_LEVEL": "warning",
        }
    )
    return env


async def session_calls(home: Path) -> dict[str, Any]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=groundglass(), args=["mcp"], env=child_env(home))
    out: dict[str, Any] = {}
    with open(home / "mcp-stderr.log", "w") as errlog:  # the child's stderr (logs), for a failure's tail
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            out["tools"] = {t.name: t for t in (await s.list_tools()).tools}
            out["index_search"] = await s.call_tool("index_search", {"query": "Eiffel Tower height", "k": 2})
            out["search"] = await s.call_tool("search", {"query": "volcano in Sicily", "max_results": 3})
            out["ask"] = await s.call_tool("ask", {"question": "When was the Eiffel Tower completed?"})
            out["bad_index"] = await s.call_tool("index_search", {"query": "x", "index": "nope"})
            out["bad_k"] = await s.call_tool("index_search", {"query": "x", "k": 0})
    return out


def test_mcp_tools_over_stdio_with_the_sdk_client(home: Path) -> None:
    out = anyio.run(session_calls, home)
    assert set(out["tools"]) == {"ask", "search", "index_search"}
    assert {"question", "source"} <= set(out["tools"]["ask"].input_schema["properties"])

    hits = out["index_search"]
    assert not hits.is_error
    rows = hits.structured_content["result"]
    assert rows[0]["url"] == EIFFEL and "330 metres" in rows[0]["text"] and len(rows) <= 2

    found = out["search"]  # the providers of [search]: here the local index
    assert not found.is_error and "Mount_Etna" in found.structured_content["result"][0]["url"]

    answer = out["ask"]
    assert not answer.is_error, answer.content
    body = answer.structured_content
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"].strip()
    assert EIFFEL in body["citations"] and body["usage"]["num_search_queries"] == 1

    for bad, words in (("bad_index", "nope"), ("bad_k", "k must be 1 to 50")):
        result = out[bad]
        assert result.is_error and words in result.content[0].text, result.content


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def http_calls(url: str) -> Any:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        return await s.call_tool("index_search", {"query": "volcano in Sicily", "k": 1, "mode": "bm25"})


def test_mcp_over_streamable_http(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(home / "mcp-http.log", "wb")  # noqa: SIM115 - the child writes to it until it is stopped
    proc = subprocess.Popen(
        [groundglass(), "mcp", "--transport", "streamable-http", "--port", str(port)],
        env=child_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, (home / "mcp-http.log").read_text()
            time.sleep(0.2)
        result = anyio.run(http_calls, f"http://127.0.0.1:{port}/mcp")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert not result.is_error and "Mount_Etna" in result.structured_content["result"][0]["url"]
