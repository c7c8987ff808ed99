"""Settings: file + environment, validated once, with clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from groundglass.config import load_settings
from groundglass.errors import GroundglassError

GG = [sys.executable, "-m", "groundglass.cli"]


def test_home_and_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[llm]\nmodel = "tiny"\n[retrieval]\ntop_k = 3\n')
    monkeypatch.setenv("GROUNDGLASS_HOME", str(home))
    monkeypatch.delenv("GROUNDGLASS_CONFIG", raising=False)
    monkeypatch.delenv("GROUNDGLASS_MODEL", raising=False)
    s = load_settings()
    assert s.home == home
    assert s.llm.model == "tiny"
    assert s.retrieval.top_k == 3
    assert s.indexes_dir == home / "indexes"
    monkeypatch.setenv("GROUNDGLASS_MODEL", "fast")
    assert load_settings().llm.model == "fast"
    assert load_settings(llm__model="default").llm.model == "default"


def test_unknown_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[retrieval]\ntop_kk = 3\n")
    with pytest.raises(GroundglassError, match=r"retrieval\.top_kk"):
        load_settings(cfg)
    cfg.write_text("[retrieval]\ntop_k = 'many'\n")
    with pytest.raises(GroundglassError, match=r"retrieval\.top_k'"):
        load_settings(cfg)
    cfg.write_text("[retrieval\n")
    with pytest.raises(GroundglassError, match="not valid TOML"):
        load_settings(cfg)


def test_cli_config_show(tmp_path: Path) -> None:
    env = {"GROUNDGLASS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([*GG, "config", "show"], capture_output=True, text=True, env=env, check=True)
    shown = json.loads(out.stdout)
    assert shown["home"] == str(tmp_path)
    assert shown["llm"]["model"] == "default"
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    res = subprocess.run(
        [*GG, "config", "show", "--config", str(bad)], capture_output=True, text=True, env=env
    )
    assert res.returncode == 2
    assert res.stderr.startswith("error: bad setting 'nonsense'")
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
