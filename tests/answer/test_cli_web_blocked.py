"""``ask --source web`` when no page of the results can be read: the terminal says why and what to
set, not only "0 source(s) found" and the decline (the reason was in ``--json``'s search_report alone).
A first SearXNG on the user's own network is where this happens: its results' pages are private
addresses, which the reader refuses until they are trusted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

GG = str(Path(sys.executable).with_name("groundglass"))


def test_a_web_answer_whose_pages_are_all_blocked_says_which_setting_lets_them_in(
    tmp_path: Path, web_site: Any, search_api: Any
) -> None:
    config = tmp_path / "groundglass.toml"
    config.write_text(
        f'[llm]\nmodel = "tiny"\nmax_tokens = 16\n[search]\nproviders = ["searxng"]\ncache_ttl_s = 0\n'
        f'[search.searxng]\nbase_url = "{search_api.url("searxng")}"\n',  # no [fetch] allowed_networks
        encoding="utf-8",
    )
    env = {**os.environ, "GROUNDGLASS_HOME": str(tmp_path), "GROUNDGLASS_LLM_THREADS": "1"}
    env.pop("GROUNDGLASS_CONFIG", None)
    done = subprocess.run(
        [GG, "ask", "--source", "web", "--config", str(config), "Who built the Eddystone lighthouse?"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert done.returncode == 0, done.stderr  # a decline, not an error
    line = next((x for x in done.stderr.splitlines() if x.startswith("(web search: none of the")), "")
    assert "refusing to fetch from 127.0.0.1" in line and "set fetch.allowed_networks" in line, done.stderr
    assert line.count("refusing to fetch") == 1  # the same reason once, not once per result
    assert sum(web_site.hits.values()) == 0  # nothing was fetched from the private address
