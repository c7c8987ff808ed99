"""Shared fixtures for the DreamBooth tests: a tiny random Stable Diffusion pipeline saved as a diffusers
folder, real photos from scikit-image as instance images, and helpers that write fit configs and run
``groundglass dreambooth fit`` in this process or as a subprocess."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One intra-op thread: the tiny models gain nothing from more, and on a shared 2-core machine OpenMP
# threads that spin while other processes hold the cores make a step 10-50x slower. Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_SILENT", "true")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


REPO = Path(__file__).resolve().parents[2]
GROUNDGLASS = Path(sys.executable).parent / "groundglass"


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight SD-1.x-layout diffusers folder (32 px images, epsilon prediction)."""
    from groundglass.dreambooth.tiny import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipeline", seed=0)


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight SDXL-layout diffusers folder (two text encoders, text_time UNet, 32 px)."""
    from groundglass.dreambooth.tiny import build_tiny_sdxl_pipeline

    return build_tiny_sdxl_pipeline(tmp_path_factory.mktemp("tiny-sdxl") / "pipeline", seed=0)


def _save_photos(folder: Path, names: list[str], size: tuple[int, int]) -> Path:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(getattr(data, name)()).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(
            folder / f"{name}.png"
        )
    return folder


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real photos (scikit-image's chelsea the cat, coffee, astronaut), 48x40 px (not square)."""
    folder = tmp_path_factory.mktemp("instance") / "photos"
    return _save_photos(folder, ["chelsea", "coffee", "astronaut"], (48, 40))


@pytest.fixture(scope="session")
def class_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four class images (other scikit-image photos), so tests that do not test generation skip it."""
    return _save_photos(
        tmp_path_factory.mktemp("class") / "images",
        ["rocket", "hubble_deep_field", "immunohistochemistry", "camera"],
        (40, 40),
    )


def base_config(
    root: Path, pipeline: Path, instance: Path, class_images: Path | None, *, steps: int = 4
) -> dict[str, Any]:
    """A tiny CPU run: 32 px, batch 1, full UNet, prior preservation, CSV + TensorBoard logs."""
    config: dict[str, Any] = {
        "trainer": {
            "max_steps": steps,
            "accelerator": "cpu",
            "devices": 1,
            "default_root_dir": str(root),
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": [
                {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(root)}},
                {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": str(root)},
                },
            ],
        },
        "model": {"base_model": str(pipeline), "local_files_only": True, "learning_rate": 1.0e-3},
        "data": {
            "instance_data_dir": str(instance),
            "instance_prompt": "a photo of sks cat",
            "resolution": 32,
            "with_prior_preservation": class_images is not None,
        },
        "checkpoint": {"every_n_train_steps": 2},
        "sampling": {"at_end": False},
    }
    if class_images is not None:
        config["data"].update(
            {"class_prompt": "a photo of a cat", "class_data_dir": str(class_images), "num_class_images": 4}
        )
    return config


def merge(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def make_config(
    tmp_path: Path, tiny_pipeline_dir: Path, instance_dir: Path, class_dir: Path
) -> Callable[..., Path]:
    """``make_config(name, overrides, root=..., prior=True)`` writes a run config and returns its path."""

    def make(
        name: str = "run",
        overrides: dict[str, Any] | None = None,
        *,
        root: Path | None = None,
        prior: bool = True,
        steps: int = 4,
    ) -> Path:
        run_root = root or tmp_path / name
        config = base_config(
            run_root, tiny_pipeline_dir, instance_dir, class_dir if prior else None, steps=steps
        )
        return write_config(tmp_path / f"{name}.yaml", merge(config, overrides or {}))

    return make


def run_in_process(args: list[str]) -> int:
    """``groundglass dreambooth fit ARGS`` in this process; returns the exit code."""
    from groundglass.cli import main

    try:
        main(["dreambooth", "fit", *args])
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def run_subprocess(
    args: list[str], *, timeout: float = 180, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``.venv/bin/groundglass ARGS`` as a subprocess (the real entry point)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [str(GROUNDGLASS), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=kwargs.pop("cwd", REPO),
        **kwargs,
    )


def step_losses(root: Path, key: str = "train/loss") -> dict[int, float]:
    """Per-step values of ``key`` from every CSVLogger version under ``root`` (later versions win)."""
    values: dict[int, float] = {}
    for metrics in sorted(
        (root / "lightning_logs").glob("version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.split("_")[1]),
    ):
        with metrics.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get(key):
                    values[int(row["step"])] = float(row[key])
    return values
