"""Helpers for the DreamBooth tests: write fit configs, run ``groundglass dreambooth fit`` in this process
or as a subprocess, read per-step losses from the CSV logs.

They live here, not in conftest.py, because test modules import them by name: ``from conftest import``
picks whichever folder's conftest pytest loaded last when it is given several test folders at once.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GROUNDGLASS = Path(sys.executable).parent / "groundglass"


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
