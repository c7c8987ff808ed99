"""A new user's first commands, from the README, in an empty GROUNDGLASS_HOME: the console script in a
subprocess. Each mistake is one line naming the problem and the fix, exit code 2, no traceback; what
the README tells them to copy from an output is whole."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

GROUNDGLASS = str(Path(sys.executable).with_name("groundglass"))


def run(home: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GROUNDGLASS_HOME": str(home), "HF_HUB_OFFLINE": "1", "COLUMNS": str(columns)}
    env.pop("GROUNDGLASS_CONFIG", None)
    return subprocess.run(
        [GROUNDGLASS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_first_ask_without_the_demo_index_says_how_to_build_it(tmp_path: Path) -> None:
    done = run(tmp_path, "ask", "When was the Berlin Wall built, and why?", "--model", "tiny")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "index 'default' does not exist" in done.stderr
    assert "groundglass index add builtin:wikipedia" in done.stderr  # not just "index add PATH"
    other = run(tmp_path, "ask", "x", "--index", "notes", "--model", "tiny")
    assert "groundglass index add PATH --index notes" in other.stderr and "builtin" not in other.stderr


def test_a_port_out_of_range_is_refused_before_anything_starts(tmp_path: Path) -> None:
    for args in (("serve", "--port", "99999"), ("mcp", "--transport", "streamable-http", "--port", "0")):
        done = run(tmp_path, *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "--port" in done.stderr  # was an OverflowError traceback from bind(), exit 1


def test_a_port_in_use_is_a_clear_error_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(tmp_path, "serve", "--open", "--port", str(port))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "groundglass API on" not in done.stderr  # nothing claims to be serving


def test_keys_list_shows_whole_ids_in_a_narrow_terminal(tmp_path: Path) -> None:
    created = run(tmp_path, "keys", "create", "--project", "a-rather-long-project-name")
    assert created.returncode == 0, created.stderr
    key_id = created.stderr.split()[1]
    assert key_id.startswith("key_")
    listed = run(tmp_path, "keys", "list", columns=60)
    assert listed.returncode == 0 and key_id in listed.stdout, listed.stdout  # what `keys revoke` takes
    revoked = run(tmp_path, "keys", "revoke", key_id)
    assert revoked.returncode == 0 and key_id in revoked.stdout


def test_usage_report_into_a_file_keeps_every_figure_whole(tmp_path: Path) -> None:
    from groundglass.config import load_settings
    from groundglass.server.db import get_engine
    from groundglass.server.usage import Cost, Ledger, UsageEntry

    ledger = Ledger(get_engine(load_settings(None, home=str(tmp_path))))
    cost = Cost(input_tokens_cost=0.001234, request_cost=0.005)
    project = "research-and-development-team"
    ledger.record(
        UsageEntry("r1", "key_1", project, "sonar", "/chat/completions", prompt_tokens=1234, cost=cost)
    )
    done = run(tmp_path, "usage", "report", "--by", "project,day")  # stdout is a pipe, as in `> report.txt`
    assert done.returncode == 0, done.stderr
    assert project in done.stdout and "0.006234" in done.stdout and "…" not in done.stdout, done.stdout


def test_an_index_add_that_reads_nothing_leaves_no_empty_index(tmp_path: Path) -> None:
    done = run(tmp_path, "index", "add", str(tmp_path / "no-such-folder"), "--index", "typo", "-q")
    assert done.returncode == 2 and "nothing could be ingested" in done.stderr, done.stderr
    assert not (tmp_path / "indexes" / "typo").exists()  # it showed in index list and the page, empty
    listed = run(tmp_path, "index", "list")
    assert "typo" not in listed.stdout and "no indexes yet" in listed.stderr


def test_a_scripted_chat_whose_turn_fails_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "GROUNDGLASS_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("GROUNDGLASS_CONFIG", None)
    done = subprocess.run(
        [GROUNDGLASS, "chat", "--index", "nope", "--model", "tiny"],
        input="Who was Marie Curie married to?\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # the turn's error is reported and the script's exit code says so (was 0: a pipeline went on)
    assert done.returncode == 2 and "index 'nope' does not exist" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_environment_variable_is_named_not_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[llm]\nmodel = "tiny"\n', encoding="utf-8")
    env = {**os.environ, "GROUNDGLASS_HOME": str(tmp_path), "GROUNDGLASS_LLM_THREADS": "lots"}
    env.pop("GROUNDGLASS_CONFIG", None)
    done = subprocess.run(
        [GROUNDGLASS, "config", "show"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    # it said "bad setting 'llm.threads' in .../config.toml", a file that holds no such key
    assert "'llm.threads' from $GROUNDGLASS_LLM_THREADS" in done.stderr and "config.toml" not in done.stderr
    assert "unset it" in done.stderr
