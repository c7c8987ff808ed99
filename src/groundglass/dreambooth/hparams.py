"""Hyperparameters as plain data (dicts, lists, strings, numbers), and the checks on the model's.

The config's dataclasses (LoRA, EMA, class-image generation settings) become dicts before Lightning
records them, so ``hparams.yaml`` stays plain YAML and checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from groundglass.errors import GroundglassError


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


def check_model_settings(
    *,
    learning_rate: float,
    prior_loss_weight: float,
    train_text_encoder: bool,
    train_token_embeddings: list[str] | None,
    cache_text_embeddings: bool | None,
) -> None:
    """Refuse model settings that are out of range or contradict each other, naming the fix."""
    if learning_rate <= 0:
        raise GroundglassError(
            f"model.learning_rate must be positive (got {learning_rate})",
            "use e.g. 5e-6 for full fine-tuning or 1e-4 for LoRA",
        )
    if prior_loss_weight < 0:
        raise GroundglassError(
            f"model.prior_loss_weight must be >= 0 (got {prior_loss_weight})",
            "use 1.0 (the DreamBooth default) or 0 to switch the prior term off",
        )
    if cache_text_embeddings and train_text_encoder:
        raise GroundglassError(
            "model.cache_text_embeddings: true needs a frozen text encoder, but "
            "model.train_text_encoder is true",
            "set model.cache_text_embeddings to null (or false) when training the text encoder",
        )
    if train_token_embeddings and train_text_encoder:
        raise GroundglassError(
            "model.train_token_embeddings trains only those words' embeddings, but "
            "model.train_text_encoder is true and trains every weight of the text encoder already",
            "set model.train_token_embeddings to null, or model.train_text_encoder to false",
        )
    if cache_text_embeddings and train_token_embeddings:
        raise GroundglassError(
            "model.cache_text_embeddings: true needs a frozen text encoder, but "
            "model.train_token_embeddings trains some of its embeddings",
            "set model.cache_text_embeddings to null (or false)",
        )
