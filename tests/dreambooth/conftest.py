"""Shared fixtures for the DreamBooth tests: a tiny random Stable Diffusion pipeline saved as a diffusers
folder, real photos from scikit-image as instance images, and ``make_config``. The helpers test modules
import by name (configs, running ``groundglass dreambooth fit``, reading losses) are in dreambooth_helpers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dreambooth_helpers import base_config, merge, write_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One intra-op thread: the tiny models gain nothing from more, and on a shared 2-core machine OpenMP
# threads that spin while other processes hold the cores make a step 10-50x slower. Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_SILENT", "true")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


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
