"""The config the soak benchmark writes for its server and CLI runs loads as it is, without the
warnings of renamed keys (it still said [search.reader] after the move to [fetch])."""

from __future__ import annotations

import warnings
from pathlib import Path

from bench.soak import write_home

from groundglass.config import load_settings


def test_soak_config_uses_current_keys(tmp_path: Path) -> None:
    path = write_home(tmp_path, "http://127.0.0.1:9", "tiny", max_tokens=64, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a renamed key's FutureWarning fails the test
        settings = load_settings(path, home=str(tmp_path))
    assert settings.fetch.allowed_networks == ["127.0.0.1/32"]
    assert settings.fetch.timeout_s == 30.0
    assert settings.fetch.per_host_delay_s == 0.0 and settings.fetch.per_host_concurrency == 8
    assert settings.search.searxng.base_url == "http://127.0.0.1:9/searxng"
    assert settings.server.models["soak"].source == "web"
