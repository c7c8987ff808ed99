"""``groundglass serve``, ``keys`` and ``usage`` as operators run them."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
from server_helpers import Server, cli, free_port, ledger_rows, make_home, write_config


def test_keys_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    write_config(tmp_path)
    proc = cli(tmp_path, "keys", "create", "--project", "research", "--rpm", "30", "--tpm", "5000")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gg-") and " " not in lines[0]
    assert "not shown again" in proc.stderr
    listed = cli(tmp_path, "keys", "list").stdout
    assert "research" in listed and lines[0] not in listed
    bad = cli(tmp_path, "keys", "create", "--project", "x", "--rpm", "0", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_serve_refuses_to_start_without_keys(tmp_path: Path) -> None:
    write_config(tmp_path)
    proc = cli(tmp_path, "serve", "--port", str(free_port()), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no API keys exist")
    assert "--open" in proc.stderr


def test_open_mode_needs_no_key_and_still_keeps_the_ledger(index_home: Path, tmp_path: Path) -> None:
    home = make_home(index_home, tmp_path / "home")
    server = Server(home, free_port(), args=["--open"]).start()
    try:
        r = httpx.post(
            server.base_url + "/search", json={"query": "volcano in Sicily", "max_results": 1}, timeout=120
        )
        assert r.status_code == 200 and r.json()["results"][0]["url"] == "https://www.example.net/etna"
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="anything", max_retries=0)
        assert "sonar" in {m.id for m in client.models.list()}
        assert httpx.get(server.base_url + "/healthz").json()["open"] is True
    finally:
        server.stop()
    rows = ledger_rows(home, endpoint="/search")
    assert len(rows) == 1 and rows[0]["key_id"] == "open" and rows[0]["project"] == "open"
    report = cli(home, "usage", "report", "--by", "project,endpoint").stdout
    assert "open" in report and "/search" in report and "total" in report
