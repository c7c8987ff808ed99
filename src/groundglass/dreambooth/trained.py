"""What trains, and a training checkpoint's weights put back on its base model.

:func:`configure_trainable` freezes what does not train and adds LoRA adapters or lets chosen token
embeddings learn; the LightningModule calls it when it is built, and :func:`load_trained` calls it
again to rebuild the same model around a checkpoint's trained weights (plus its EMA weights), which is
how sampling, export and the fine-tuning service open a run. :func:`check_same_run` refuses a resume
from another base model or run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from groundglass.dreambooth.model import (
    Components,
    LoraSettings,
    attach_lora,
    freeze,
    load_components,
)
from groundglass.dreambooth.seeding import derive_seed
from groundglass.errors import GroundglassError


def configure_trainable(
    components: Components,
    *,
    train_text_encoder: bool,
    lora: LoraSettings | None,
    seed: int,
    train_token_embeddings: list[str] | None = None,
) -> None:
    """Freeze what does not train (no gradients, eval mode); add LoRA adapters if asked; let the input
    embeddings of ``train_token_embeddings`` train (only their rows: see :func:`train_token_rows`)."""
    freeze(components.vae)
    if lora is not None:
        attach_lora(components, lora, text_encoder=train_text_encoder, seed=derive_seed(seed, "lora-init"))
        if not train_text_encoder:
            for encoder in components.text_encoders():
                freeze(encoder)
    else:
        components.unet.requires_grad_(True)
        for encoder in components.text_encoders():
            if train_text_encoder:
                encoder.requires_grad_(True)
            else:
                freeze(encoder)
    if train_token_embeddings:
        train_token_rows(components, train_token_embeddings)


def word_token_ids(tokenizer: Any, words: list[str]) -> list[int]:
    """The token ids of ``words``; a word that is not a single token is refused with the fix."""
    ids = []
    for word in words:
        pieces = tokenizer(word, add_special_tokens=False).input_ids
        if len(pieces) != 1:
            raise GroundglassError(
                f"model.train_token_embeddings: {word!r} is {len(pieces)} tokens for this tokenizer, not one",
                "use an identifier that is a single token (e.g. sks), or list each of its tokens",
            )
        ids.append(int(pieces[0]))
    return ids


def train_token_rows(components: Components, words: list[str]) -> list[int]:
    """Let only the rows of ``words`` in the text encoder's input embedding learn; return their ids.

    The whole embedding matrix becomes trainable (so it is optimised, averaged and checkpointed like
    any weight) and a gradient hook zeroes every other row, so AdamW (without weight decay) never
    moves them: every other word means what it meant.
    """
    ids = word_token_ids(components.tokenizer, words)
    weight = components.text_encoder.get_input_embeddings().weight
    mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype)
    mask[ids] = 1.0
    weight.requires_grad_(True)
    weight.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))
    return ids


def check_same_run(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise a GroundglassError when a checkpoint comes from another base model or run."""

    def model_name(fields: dict[str, Any]) -> str:
        revision = fields.get("revision")
        return repr(fields.get("base_model")) + (f"@{revision}" if revision else "")

    if model_name(saved) != model_name(current):
        raise GroundglassError(
            f"the checkpoint was trained from base model {model_name(saved)}, this config uses "
            f"{model_name(current)}",
            "resume with the base model the checkpoint was trained from, or start a new run without "
            "--ckpt_path",
        )
    diffs = [k for k in sorted(set(saved) & set(current)) if saved[k] != current[k]]
    if diffs:
        detail = "; ".join(f"{k}: checkpoint {saved[k]!r}, config {current[k]!r}" for k in diffs)
        raise GroundglassError(
            f"the checkpoint belongs to a different run ({detail})",
            "resume with the config the checkpoint was written with (config.yaml in the run's log folder), "
            "or start a new run without --ckpt_path",
        )


def _read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint at ``path`` (read with weights_only=True) and its ``groundglass`` record."""
    if not path.is_file():
        raise GroundglassError(
            f"checkpoint {path} does not exist",
            "give a .ckpt written by `groundglass dreambooth fit` (e.g. RUN/checkpoints/last.ckpt)",
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an UnpicklingError (Python objects inside) stays visible as __cause__
        raise GroundglassError(
            f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}",
            "give a .ckpt written by `groundglass dreambooth fit`",
        ) from exc
    meta = checkpoint.get("groundglass") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        raise GroundglassError(
            f"{path} is not a groundglass DreamBooth checkpoint",
            "give a .ckpt written by `groundglass dreambooth fit`",
        )
    return checkpoint, meta


def _apply_state(components: Components, state: dict[str, Any], path: Path) -> None:
    """Load the trained weights in ``state`` into each part; a weight the part lacks is an error."""
    for prefix, module in (
        ("unet.", components.unet),
        ("text_encoder.", components.text_encoder),
        ("text_encoder_2.", components.text_encoder_2),
        ("vae.", components.vae),
    ):
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not sub:
            continue
        result = module.load_state_dict(sub, strict=False)
        if result.unexpected_keys:
            raise GroundglassError(
                f"checkpoint {path} does not fit its base model "
                f"({len(result.unexpected_keys)} unknown {prefix[:-1]} weights)",
                "make sure the base model folder is the one the run was trained from",
            )


def load_trained(ckpt_path: str | Path, *, use_ema: bool = True) -> tuple[Components, dict[str, Any]]:
    """The base model of a fit checkpoint with its trained weights applied (EMA weights if kept).

    Returns the components (LoRA adapters attached through peft when the run used LoRA) and the run's
    hyperparameters: the model's, plus ``data`` (the data module's), ``global_step`` and
    ``ema_applied``.
    """
    path = Path(ckpt_path).expanduser()
    checkpoint, meta = _read_checkpoint(path)
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    base_model = meta["run"]["base_model"]
    if not Path(base_model).exists() and Path(str(hparams.get("base_model", ""))).exists():
        base_model = hparams["base_model"]
    components = load_components(
        base_model,
        local_files_only=bool(hparams.get("local_files_only")),
        revision=hparams.get("revision"),
        vae=hparams.get("vae"),
    )
    lora = LoraSettings(**hparams["lora"]) if hparams.get("lora") else None
    train_text_encoder = bool(hparams.get("train_text_encoder"))
    configure_trainable(
        components, train_text_encoder=train_text_encoder, lora=lora, seed=int(hparams.get("seed", 0))
    )
    if hparams.get("prediction_type"):
        components.noise_scheduler.register_to_config(prediction_type=hparams["prediction_type"])
    state = dict(checkpoint["state_dict"])
    keys = list(meta["trainable_keys"])
    ema_state = meta.get("ema")
    ema_applied = bool(use_ema and ema_state)
    if ema_applied:
        shadow = ema_state["shadow_params"]
        if len(shadow) != len(keys):
            raise GroundglassError(f"checkpoint {path} has a damaged EMA state", "load it with use_ema=False")
        state.update(dict(zip(keys, shadow, strict=True)))
    _apply_state(components, state, path)
    for module in (components.unet, *components.text_encoders(), components.vae):
        module.requires_grad_(False)
        module.eval()
    info = {
        **hparams,
        "data": dict(checkpoint.get("datamodule_hyper_parameters", {})),
        "global_step": int(checkpoint.get("global_step", 0)),
        "ema_applied": ema_applied,
        "prediction_type": components.noise_scheduler.config.prediction_type,
    }
    return components, info
