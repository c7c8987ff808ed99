"""Hyperparameters as plain data (dicts, lists, strings, numbers).

The config's dataclasses (LoRA, EMA, class-image generation settings) become dicts before Lightning
records them, so ``hparams.yaml`` stays plain YAML and checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def to_plain(value: Any) -> Any:
    """Dataclasses, paths and tuples become dicts, strings and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def init_arguments(frame_locals: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an ``__init__`` from its ``locals()`` taken first thing, as plain data."""
    return to_plain({k: v for k, v in frame_locals.items() if k not in ("self", "__class__")})
