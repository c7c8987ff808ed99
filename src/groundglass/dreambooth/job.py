"""A DreamBooth job as a program (the server) submits it: hyperparameters in, the fit config out.

:class:`Hyperparameters` names the fit config's fields a client sets (prompts, identifier, train_steps,
learning rate, prior loss weight, LoRA or full weights, resolution, ...) in one flat, validated
object; an unknown field is an error naming it. :func:`fit_config` turns them into the very YAML
``groundglass dreambooth fit`` reads, so a job is a fit run and nothing else.

Presets (``preset``) choose what trains, with learning rates that suit it:

- ``lora``: LoRA adapters on the UNet (rank 16), learning rate 1e-4: small checkpoints, fast.
- ``unet``: the full UNet, learning rate 5e-6 (the DreamBooth paper's setting).
- ``unet_text_encoder``: the full UNet and the text encoder, learning rate 2e-6.
- ``sdxl_lora``: SDXL, LoRA adapters on the UNet (rank 32, ``configs/dreambooth/sdxl_lora.yaml``'s
  settings), learning rate 1e-4, gradient checkpointing and 8-bit AdamW (on CUDA); with
  ``train_text_encoder``, LoRA on both text encoders at 5e-6.
- ``sdxl_unet``: SDXL, the full UNet, learning rate 5e-6, gradient checkpointing and 8-bit AdamW.

The first three are for Stable Diffusion 1.x/2.x base models, the ``sdxl_`` ones for SDXL base models;
:func:`resolve_preset` checks a job's preset against its base model's family (read from the model,
:mod:`groundglass.dreambooth.family`) and picks ``lora`` or ``sdxl_lora`` when none is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from groundglass.dreambooth.family import SDXL, Family
from groundglass.errors import GroundglassError

Preset = Literal["lora", "unet", "unet_text_encoder", "sdxl_lora", "sdxl_unet"]
SD_PRESETS = ("lora", "unet", "unet_text_encoder")
SDXL_PRESETS = ("sdxl_lora", "sdxl_unet")
PRESET_LEARNING_RATES: dict[str, float] = {
    "lora": 1e-4,
    "unet": 5e-6,
    "unet_text_encoder": 2e-6,
    "sdxl_lora": 1e-4,
    "sdxl_unet": 5e-6,
}
PRESET_LORA_RANK: dict[str, int] = {"lora": 16, "sdxl_lora": 32}
SDXL_TEXT_ENCODER_LEARNING_RATE = 5e-6


class Hyperparameters(BaseModel):
    """What a client may set on a DreamBooth job (``method.dreambooth.hyperparameters``)."""

    model_config = ConfigDict(extra="forbid")

    preset: Preset | None = None  # None: lora or sdxl_lora, by the base model's family (resolve_preset)
    instance_prompt: str = Field("a photo of sks dog", min_length=1, max_length=500)
    identifier: str = Field("sks", min_length=1, max_length=50)
    class_prompt: str | None = Field(None, max_length=500)
    # Optimizer steps (the fit config's trainer.max_steps); ``steps`` counts denoising steps everywhere
    # else, so the API's old name ``steps`` is read for one release only (server/finetune/service.py).
    train_steps: int = Field(400, ge=1, le=1_000_000, description="DreamBooth optimizer steps")
    learning_rate: float | None = Field(None, gt=0, le=1.0)
    text_encoder_learning_rate: float | None = Field(None, gt=0, le=1.0)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    lr_warmup_steps: int = Field(0, ge=0)
    prior_loss_weight: float = Field(1.0, ge=0)
    num_class_images: int = Field(100, ge=1, le=10_000)
    train_text_encoder: bool | None = None
    lora_rank: int | None = Field(None, ge=1, le=512)
    resolution: int | None = Field(None, ge=8, le=2048, multiple_of=8)
    batch_size: int = Field(1, ge=1, le=64)
    gradient_accumulation_steps: int = Field(1, ge=1, le=256)
    random_flip: bool = True
    center_crop: bool = False
    ema_decay: float | None = Field(None, gt=0, lt=1)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    checkpoint_every: int = Field(100, ge=1)
    log_every: int = Field(1, ge=1)
    sample_every: int = Field(0, ge=0)
    sample_prompts: list[str] | None = Field(None, max_length=16)
    sample_steps: int = Field(25, ge=1, le=1000, description="denoising steps per sample image")
    guidance_scale: float = Field(7.5, ge=0, le=50)
    precision: Literal["32", "16-mixed", "bf16-mixed"] | None = None

    @model_validator(mode="after")
    def _prior_needs_a_class(self) -> Hyperparameters:
        if self.prior_loss_weight > 0 and not (self.class_prompt or "").strip():
            raise ValueError(
                "prior preservation (prior_loss_weight > 0) needs class_prompt, e.g. "
                "'a photo of a dog'; or set prior_loss_weight to 0"
            )
        if self.identifier not in self.instance_prompt.split():
            raise ValueError(
                f"instance_prompt {self.instance_prompt!r} does not contain the identifier "
                f"{self.identifier!r}"
            )
        return self

    def trains_text_encoder(self) -> bool:
        if self.train_text_encoder is not None:
            return self.train_text_encoder
        return self.preset == "unet_text_encoder"


def resolve_preset(
    hp: Hyperparameters, family: Family, model: str, *, where: str = "hyperparameters"
) -> Hyperparameters:
    """``hp`` with its preset fitting ``family`` (the base model ``model``'s); a GroundglassError (400)
    naming the preset and the family when they do not fit."""
    fitting = SDXL_PRESETS if family is SDXL else SD_PRESETS
    if hp.preset is None:
        return hp.model_copy(update={"preset": fitting[0]})
    if hp.preset not in fitting:
        trains = "SDXL" if hp.preset in SDXL_PRESETS else "Stable Diffusion 1.x/2.x"
        raise GroundglassError(
            f"{where}.preset {hp.preset!r} trains {trains} models, but the base model {model!r} is "
            f"{family.title}",
            f"use preset {', '.join(fitting)} with {model!r}, or a base model of the preset's family",
            param=f"{where}.preset",
        )
    return hp


def parse_hyperparameters(raw: Any, *, where: str = "hyperparameters") -> Hyperparameters:
    """Validated hyperparameters; a GroundglassError (400) naming the first bad or unknown field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise GroundglassError(f"{where} must be an object", 'send e.g. {"train_steps": 400}', param=where)
    try:
        return Hyperparameters.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        name = f"{where}.{field}" if field else where
        if error["type"] == "extra_forbidden":
            known = ", ".join(Hyperparameters.model_fields)
            raise GroundglassError(f"unknown field {name}", f"use only: {known}", param=name) from None
        message = error["msg"].removeprefix("Value error, ")
        raise GroundglassError(f"{name}: {message}", "fix that field", param=name) from None


def native_resolution(base_model: str) -> int:
    """The image size a local diffusers folder was trained at (UNet sample size x VAE downsampling);
    512 for a Hub id (the Stable Diffusion 1.x size)."""
    folder = Path(base_model)
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((folder / "vae" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 512
    size = unet.get("sample_size", 64)
    size = size[0] if isinstance(size, list) else size
    return int(size) * 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)


def fit_config(
    hp: Hyperparameters,
    *,
    base_model: str,
    root: Path,
    instance_dir: Path,
    class_dir: Path,
    accelerator: str = "auto",
    local_files_only: bool = True,
) -> dict[str, Any]:
    """The ``groundglass dreambooth fit`` config of a job (run folder ``root``)."""
    prior = hp.prior_loss_weight > 0
    resolution = hp.resolution or native_resolution(base_model)
    sampling: dict[str, Any] = {
        "every_n_steps": hp.sample_every,
        "at_end": hp.sample_every > 0,
        "steps": hp.sample_steps,
        "guidance_scale": hp.guidance_scale,
    }
    if hp.sample_prompts:
        sampling["prompts"] = hp.sample_prompts
    return {
        "trainer": _trainer_section(hp, root=root, accelerator=accelerator),
        "model": _model_section(hp, base_model=base_model, local_files_only=local_files_only),
        "data": _data_section(
            hp, resolution=resolution, prior=prior, instance_dir=instance_dir, class_dir=class_dir
        ),
        "checkpoint": {"every_n_train_steps": hp.checkpoint_every, "save_top_k": 0},
        "sampling": sampling,
    }


def _model_section(hp: Hyperparameters, *, base_model: str, local_files_only: bool) -> dict[str, Any]:
    """The fit config's ``model:`` section: the preset's learning rate, LoRA rank and SDXL memory savers."""
    preset = hp.preset or "lora"
    model: dict[str, Any] = {
        "base_model": base_model,
        "local_files_only": local_files_only,
        "learning_rate": hp.learning_rate or PRESET_LEARNING_RATES[preset],
        "train_text_encoder": hp.trains_text_encoder(),
        "prior_loss_weight": hp.prior_loss_weight,
        "lr_scheduler": hp.lr_scheduler,
        "lr_warmup_steps": hp.lr_warmup_steps,
        "seed": hp.seed,
    }
    if hp.text_encoder_learning_rate is not None:
        model["text_encoder_learning_rate"] = hp.text_encoder_learning_rate
    elif preset == "sdxl_lora" and hp.trains_text_encoder():
        model["text_encoder_learning_rate"] = SDXL_TEXT_ENCODER_LEARNING_RATE
    if preset in PRESET_LORA_RANK or hp.lora_rank is not None:
        rank = hp.lora_rank or PRESET_LORA_RANK.get(preset, PRESET_LORA_RANK["lora"])
        model["lora"] = {"rank": rank, "alpha": rank}
    if preset in SDXL_PRESETS:
        # What lets SDXL fit one 24 GB GPU at 1024 px (configs/dreambooth/sdxl_lora.yaml); 8-bit AdamW
        # needs CUDA and falls back to AdamW elsewhere.
        model["gradient_checkpointing"] = True
        model["optimizer"] = "adamw8bit"
    if hp.ema_decay is not None:
        model["ema"] = {"decay": hp.ema_decay}
    return model


def _data_section(
    hp: Hyperparameters, *, resolution: int, prior: bool, instance_dir: Path, class_dir: Path
) -> dict[str, Any]:
    """The fit config's ``data:`` section (class images and their generation with prior preservation)."""
    data: dict[str, Any] = {
        "instance_data_dir": str(instance_dir),
        "instance_prompt": hp.instance_prompt,
        "identifier": hp.identifier,
        "resolution": resolution,
        "batch_size": hp.batch_size,
        "with_prior_preservation": prior,
        "random_flip": hp.random_flip,
        "center_crop": hp.center_crop,
        "num_workers": 0,
    }
    if prior:
        data.update(
            {
                "class_prompt": hp.class_prompt,
                "class_data_dir": str(class_dir),
                "num_class_images": hp.num_class_images,
                "class_image_generation": {
                    "batch_size": 4,
                    "steps": hp.sample_steps,
                    "guidance_scale": hp.guidance_scale,
                },
            }
        )
    return data


def _trainer_section(hp: Hyperparameters, *, root: Path, accelerator: str) -> dict[str, Any]:
    """The fit config's ``trainer:`` section: one device, no logger or progress bar (the job watches)."""
    trainer: dict[str, Any] = {
        "max_steps": hp.train_steps,
        "accelerator": accelerator,
        "devices": 1,
        "default_root_dir": str(root),
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": hp.log_every,
        "accumulate_grad_batches": hp.gradient_accumulation_steps,
    }
    if hp.precision is not None:
        trainer["precision"] = hp.precision
    return trainer
