"""The config eval_docs writes for `groundglass ask --source web` loads as it is, without the
warnings of renamed keys (it still said [search.reader] after the move to [fetch])."""

from __future__ import annotations

import warnings
from pathlib import Path

from bench.eval_docs import write_config

from groundglass.config import load_settings


def test_eval_docs_config_uses_current_keys(tmp_path: Path) -> None:
    path = tmp_path / "groundglass.toml"
    write_config(path, "http://127.0.0.1:9/searxng", threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a renamed key's FutureWarning fails the test
        settings = load_settings(path, home=str(tmp_path))
    assert settings.fetch.allow_private is True and settings.llm.threads == 1
    assert settings.search.searxng.base_url == "http://127.0.0.1:9/searxng"
