"""``groundglass ask`` as a user runs it: the installed console script in a subprocess, a real index
in a temporary GROUNDGLASS_HOME, the tiny model. stdout and stderr are checked apart: with --json,
stdout must be exactly one JSON object; errors are one line on stderr with exit code 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from groundglass.answer import cite
from groundglass.answer.prompt import DECLINE

GROUNDGLASS = str(Path(sys.executable).with_name("groundglass"))
TITLES = ["Berlin Wall", "Mount Everest", "Marie Curie", "Moon", "Eiffel Tower"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from groundglass.answer.index.builtin import wikipedia_documents
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex
    from groundglass.config import load_settings

    home = tmp_path_factory.mktemp("gg-home")
    with LocalIndex.open(load_settings(None, home=str(home)), "wiki", create=True) as index:
        add_documents(index, wikipedia_documents(titles=TITLES))
    return home


def groundglass(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GROUNDGLASS_HOME": str(home), "HF_HUB_OFFLINE": "1", "GROUNDGLASS_MODEL": "tiny"}
    env.pop("GROUNDGLASS_CONFIG", None)
    return subprocess.run(
        [GROUNDGLASS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def test_ask_json_prints_one_perplexity_object(home: Path) -> None:
    result = groundglass(
        home,
        "ask",
        "When was the Berlin Wall built?",
        "--index",
        "wiki",
        "--json",
        "--max-tokens",
        "48",
        "--top-k",
        "3",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # nothing but the object on stdout
    assert {
        "id",
        "model",
        "created",
        "choices",
        "citations",
        "search_results",
        "usage",
        "attribution",
        "declined",
    } <= set(data)
    content = data["choices"][0]["message"]["content"]
    assert content and data["choices"][0]["finish_reason"] in ("stop", "length")
    assert 1 <= len(data["search_results"]) <= 3
    assert data["search_results"][0]["title"] == "Berlin Wall"
    assert data["citations"] == [r["url"] for r in data["search_results"]]
    assert all(1 <= n <= len(data["citations"]) for n in cite.cited_numbers(content))
    assert data["usage"]["num_search_queries"] == 1 and data["usage"]["completion_tokens"] > 0
    assert isinstance(data["attribution"], list) and data["declined"] is False


def test_ask_streams_the_answer_then_the_sources(home: Path) -> None:
    result = groundglass(home, "ask", "How high is Mount Everest?", "--index", "wiki", "--max-tokens", "32")
    assert result.returncode == 0, result.stderr
    answer, _, sources = result.stdout.partition("\nSources\n")
    assert answer.strip()
    assert "[1] Mount Everest — https://en.wikipedia.org/wiki/Mount_Everest" in sources
    assert "error" not in result.stderr.lower()


def test_ask_declines_a_question_the_index_cannot_answer(home: Path) -> None:
    result = groundglass(
        home, "ask", "How do I configure a VLAN trunk port on a network switch?", "--index", "wiki", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["declined"] is True and data["choices"][0]["message"]["content"] == DECLINE
    assert data["search_results"] == [] and data["citations"] == []
    assert data["usage"]["completion_tokens"] == 0


def test_empty_question(home: Path) -> None:
    assert "the question is empty" in one_line_error(groundglass(home, "ask", "  ", "--json"))


def test_unknown_index(home: Path) -> None:
    line = one_line_error(groundglass(home, "ask", "Anything?", "--index", "nope", "--json"))
    assert "index 'nope' does not exist" in line and "groundglass index add" in line


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--recency", "fortnight"],
            "--recency 'fortnight' is not one of hour, day, week, month, year (use --recency hour,",
        ),
        (["--published-after", "2024-13-01"], "--published-after '2024-13-01' is not a date (write it as"),
        (
            ["--published-after", "2024-02-01", "--published-before", "2024-01-01"],
            "--published-after (2024-02-01) is later than --published-before (2024-01-01)",
        ),
        (["--language", "12"], "--language entry '12' is not a language code"),
        (
            ["--search-context-size", "huge"],
            "--search-context-size 'huge' is not one of low, medium, high (use --search-context-size low,",
        ),
    ],
)
def test_bad_search_filters_name_the_flags(tmp_path: Path, flags: list[str], expected: str) -> None:
    # the API's field names (search_recency_filter...) mean nothing on the command line
    line = one_line_error(groundglass(tmp_path, "ask", "Anything?", "--source", "web", *flags, "--json"))
    assert expected in line and "_filter" not in line and "search_context_size" not in line, line


def test_bad_model_spec(home: Path) -> None:
    line = one_line_error(
        groundglass(home, "ask", "Anything?", "--index", "wiki", "--model", "gpt-17", "--json")
    )
    assert "unknown model spec 'gpt-17'" in line


def test_model_endpoint_down(home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_line_error(
        groundglass(
            home,
            "ask",
            "When was the Berlin Wall built?",
            "--index",
            "wiki",
            "--model",
            f"openai:m@http://127.0.0.1:{port}/v1",
            "--json",
        )
    )
    assert "cannot reach the model endpoint" in line
