"""The config eval_docs writes for `groundglass ask --source web` loads as it is, without the
warnings of renamed keys (it still said [search.reader] after the move to [fetch])."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from bench.eval_docs import run_json, write_config

from groundglass.config import load_settings


def test_eval_docs_config_uses_current_keys(tmp_path: Path) -> None:
    path = tmp_path / "groundglass.toml"
    write_config(path, "http://127.0.0.1:9/searxng", threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a renamed key's FutureWarning fails the test
        settings = load_settings(path, home=str(tmp_path))
    assert settings.fetch.allow_private is True and settings.llm.threads == 1
    assert settings.search.searxng.base_url == "http://127.0.0.1:9/searxng"


def test_a_failed_run_keeps_its_whole_stderr(tmp_path: Path) -> None:
    """A native crash's faulthandler dump is long and its crashing thread is rarely last: the eval
    keeps all of it in a file, and the error text says where."""
    crash = "import sys; sys.stderr.write('Thread 0x1 (most recent call first):' + 'x' * 5000); sys.exit(3)"
    out, _, error = run_json([sys.executable, "-c", crash], dict(os.environ), tmp_path / "failures")
    assert out is None and error.startswith("exit 3 (whole stderr: ")
    (kept,) = (tmp_path / "failures").iterdir()
    assert str(kept) in error
    assert "Thread 0x1 (most recent call first)" in kept.read_text() and "Thread 0x1" not in error


def test_a_saved_run_is_scored_again_by_the_current_scorer() -> None:
    """An answer about what a function returns when a substring "is not found" was once scored a
    decline; rescoring a saved run judges its stored answers again, keeping the pages they cite."""
    from bench.docqa_data import CORPORA
    from bench.eval_docs import rescored, summaries

    score = {"id": "sq-s07", "kind": "single", "correct": False, "declined": True, "gold_cited": 1.0}
    score |= {"precision": 1.0, "cited": ["lang_corefunc.html"], "seconds": 10.0}
    row = {"mode": "web", "pipeline": "groundglass", "id": "sq-s07", "score": score}
    row["answer"] = "The instr() function returns 0 when the substring is not found. [1]"
    (again,) = rescored([row], CORPORA["sqlite"])
    assert again["score"]["correct"] is True and again["score"]["declined"] is False
    assert again["score"]["cited"] == ["lang_corefunc.html"]
    assert summaries([again])["web"]["groundglass"]["correct_single"] == 1.0
