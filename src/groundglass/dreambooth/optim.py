"""The optimizer, its learning-rate schedule and the EMA of the trained weights.

Everything here is diffusers' or torch's: AdamW (bitsandbytes' 8-bit AdamW on CUDA when asked for),
``diffusers.optimization.get_scheduler`` for the schedule and ``diffusers.training_utils.EMAModel``
for the average. What is ours is the choice of AdamW kernel and the parameter groups (the UNet, and
the text encoder at its own learning rate).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal

import torch

from groundglass.errors import GroundglassError

SchedulerName = Literal[
    "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"
]


@dataclasses.dataclass
class EmaSettings:
    """Exponential moving average of the trained weights (diffusers' EMAModel).

    Args:
        decay: the largest decay.
        warmup: ramp the decay up as 1 - (1 + step) ** -power (useful for short DreamBooth runs).
        power: the warm-up exponent.
        update_after_step: start averaging after this many optimizer steps.
    """

    decay: float = 0.9999
    warmup: bool = True
    power: float = 2 / 3
    update_after_step: int = 0


def adamw_kernel(params: list[torch.nn.Parameter]) -> dict[str, bool]:
    """The fastest AdamW implementation PyTorch offers for ``params``: ``fused`` where it has a fused
    kernel for their device and dtype (CUDA and, since 2.4, CPU), else ``foreach``.

    On the 2-core CPU test machine, one AdamW step over the tiny UNet's 1M parameters took 5 ms
    fused, 21 ms foreach and 32 ms with the per-tensor loop.
    """
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    fused_devices = set(_get_fused_kernels_supported_devices())
    if params and all(p.device.type in fused_devices and p.is_floating_point() for p in params):
        return {"fused": True}
    return {"foreach": True}


def make_optimizer(
    kind: str,
    groups: list[dict[str, Any]],
    *,
    betas: tuple[float, float],
    weight_decay: float,
    eps: float,
    kernel: dict[str, bool] | None = None,
) -> torch.optim.Optimizer:
    """AdamW; 8-bit AdamW (bitsandbytes) when asked for, on CUDA, and installed.

    ``kernel`` picks torch's implementation (``{"fused": True}``, ``{"foreach": True}``, or ``{}`` for
    torch's own default); by default :func:`adamw_kernel` chooses.
    """
    if kind == "adamw8bit":
        on_cuda = any(p.is_cuda for g in groups for p in g["params"])
        try:
            import bitsandbytes as bnb  # type: ignore[import-not-found]
        except ImportError:
            bnb = None
        if on_cuda and bnb is not None:
            return bnb.optim.AdamW8bit(groups, betas=betas, weight_decay=weight_decay, eps=eps)
        warnings.warn(
            "model.optimizer adamw8bit needs a CUDA device and bitsandbytes; using torch AdamW", stacklevel=2
        )
    if kernel is None:
        kernel = adamw_kernel([p for g in groups for p in g["params"]])
    return torch.optim.AdamW(groups, betas=betas, weight_decay=weight_decay, eps=eps, **kernel)


def training_steps(trainer: Any) -> int:
    """``trainer.max_steps``, which the schedule needs: DreamBooth counts training in optimizer steps."""
    max_steps = trainer.max_steps
    if max_steps is None or max_steps < 1:
        raise GroundglassError(
            "trainer.max_steps is not set",
            "DreamBooth counts training in optimizer steps: set e.g. trainer.max_steps: 800",
        )
    return int(max_steps)


def lr_scale(trainer: Any, scale_lr: bool) -> int:
    """What model.scale_lr multiplies the learning rates by: batch size x devices x accumulation."""
    if not scale_lr:
        return 1
    batch_size = getattr(trainer.datamodule, "batch_size", 1) if trainer.datamodule is not None else 1
    return batch_size * trainer.world_size * trainer.accumulate_grad_batches


def param_groups(
    unet: torch.nn.Module,
    text_encoders: list[Any],
    *,
    learning_rate: float,
    text_encoder_learning_rate: float | None,
    scale: int,
    only_token_embeddings: bool,
) -> list[dict[str, Any]]:
    """The UNet's trainable parameters, then the text encoders' (if any train) at their own rate;
    both rates times ``scale`` (:func:`lr_scale`)."""
    groups = [
        {
            "params": [p for p in unet.parameters() if p.requires_grad],
            "lr": learning_rate * scale,
            "name": "unet",
        }
    ]
    text_params = [p for e in text_encoders for p in e.parameters() if p.requires_grad]
    if text_params:
        group = {
            "params": text_params,
            "name": "text_encoder",
            "lr": (text_encoder_learning_rate or learning_rate) * scale,
        }
        if only_token_embeddings:  # no decay: it would shrink every other word's embedding too
            group["weight_decay"] = 0.0
        groups.append(group)
    return groups


def lr_schedule(optimizer: torch.optim.Optimizer, hp: Any, max_steps: int) -> dict[str, Any]:
    """diffusers' schedule named by ``hp.lr_scheduler``, stepped once per optimizer step (Lightning's
    ``lr_scheduler`` entry)."""
    from diffusers.optimization import get_scheduler

    scheduler = get_scheduler(
        hp.lr_scheduler,
        optimizer,
        num_warmup_steps=hp.lr_warmup_steps,
        num_training_steps=max_steps,
        num_cycles=hp.lr_num_cycles,
        power=hp.lr_power,
    )
    return {"scheduler": scheduler, "interval": "step", "frequency": 1}


def make_ema(settings: EmaSettings, params: list[torch.nn.Parameter], state: dict[str, Any] | None) -> Any:
    """diffusers' EMAModel over ``params``, restored from ``state`` (a resumed checkpoint's) if given."""
    from diffusers.training_utils import EMAModel

    ema = EMAModel(
        params,
        decay=settings.decay,
        use_ema_warmup=settings.warmup,
        power=settings.power,
        update_after_step=settings.update_after_step,
        foreach=True,
    )
    if state is not None:
        ema.load_state_dict(state)
    return ema
