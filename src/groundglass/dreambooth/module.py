"""The LightningModule: what trains, what stays frozen, and the prior-preservation loss.

One training step reads top to bottom: draw each example's timestep and noise from its own seed,
encode images with the frozen VAE and prompts with the text encoder, noise the latents, run the UNet
ONCE on the instance and class examples together, and take

    loss = MSE(instance) + prior_loss_weight * MSE(class)

against the noise (epsilon) or the velocity (v_prediction), as the scheduler config says.

Checkpoints hold only the trainable weights (plus optimizer, LR scheduler, EMA, loop state, RNG
states, the base model and a run fingerprint); the frozen weights come from the base model when a
run resumes or a checkpoint is loaded with :func:`~groundglass.dreambooth.trained.load_trained`.

Speed and memory (see :mod:`groundglass.dreambooth.cache`):

- VAE latents of the training images and the text embeddings of the prompts (when the text
  encoder is frozen) are computed once at the start of training; the VAE and the frozen text
  encoder then stay off the training device. They are kept outside the module's registered
  submodules (``self._frozen``), so Lightning's move to the device does not carry them along; the
  module moves them itself, only where a step needs them.
- Attention runs through PyTorch's scaled-dot-product attention (diffusers' ``AttnProcessor2_0``,
  CLIP with ``attn_implementation="sdpa"``); AdamW uses its fused kernel where PyTorch has one (CUDA
  and CPU), else the foreach one; gradients are freed (``set_to_none``) rather than zeroed; the UNet
  goes channels_last on CUDA; ``torch.compile`` is an option.
- The step never reads a value back from the device except on logging steps: metrics are logged
  every ``trainer.log_every_n_steps`` optimizer steps, and the progress bar shows the last logged loss.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from groundglass.dreambooth.cache import (
    encode_latent_cache,
    encode_prompt_cache,
    latent_moments,
    sample_latents,
)
from groundglass.dreambooth.family import SDXL
from groundglass.dreambooth.hparams import init_arguments, to_plain
from groundglass.dreambooth.model import (
    Components,
    LoraSettings,
    load_components,
    resolve_base_model,
    use_sdpa_attention,
)
from groundglass.dreambooth.sdxl import added_conditions, encode_text, token_ids
from groundglass.dreambooth.trained import check_same_run, configure_trainable
from groundglass.errors import GroundglassError

CHECKPOINT_FORMAT = 1
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


def _rng_state() -> dict[str, Any]:
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


class _FrozenParts:
    """The VAE and a frozen text encoder, held where Lightning's device moves do not reach.

    A plain object (not an ``nn.Module``), so these parts are not registered submodules of the
    LightningModule: ``module.to(device)`` leaves them where they are, and they never enter a
    checkpoint's state dict or DDP's parameter lists.
    """

    def __init__(self, vae: Any, text_encoder: Any | None, text_encoder_2: Any | None = None) -> None:
        self.vae = vae
        self.text_encoder = text_encoder
        self.text_encoder_2 = text_encoder_2


class DreamBoothModule(pl.LightningModule):
    """DreamBooth fine-tuning of a Stable Diffusion 1.x/2.x or SDXL model.

    The family is detected from the base model (:mod:`~groundglass.dreambooth.family`). SDXL runs
    encode prompts with both text encoders and condition the UNet on the pooled embedding and each
    example's original size and crop (:mod:`~groundglass.dreambooth.sdxl`); "the text encoder" below
    then means both, each with its own adapters, trained at ``text_encoder_learning_rate``.

    Args:
        base_model: Hugging Face model id or local diffusers folder.
        revision: Hub revision of the base model.
        local_files_only: never download; use the folder or the local Hugging Face cache.
        vae: another VAE for the base model (a folder or Hub id of an AutoencoderKL, or a pipeline
            folder with vae/); it must belong to the base model's family.
        train_text_encoder: train the text encoder too (full weights, or LoRA adapters with ``lora``).
        train_token_embeddings: words (e.g. the identifier, ``[sks]``) whose input embeddings train
            while the rest of the text encoder stays frozen: the identifier gets a meaning of its own
            and every other word, the class prompt included, encodes exactly as before.
        lora: train LoRA adapters instead of the full weights.
        learning_rate: peak learning rate (UNet; the text encoder too unless text_encoder_learning_rate).
        text_encoder_learning_rate: learning rate of the text encoder.
        scale_lr: multiply the learning rates by batch size x devices x gradient accumulation.
        optimizer: adamw, or adamw8bit (bitsandbytes, CUDA only; falls back to adamw).
        adam_beta1: AdamW beta1.
        adam_beta2: AdamW beta2.
        adam_weight_decay: AdamW weight decay.
        adam_epsilon: AdamW epsilon.
        lr_scheduler: learning-rate schedule (diffusers.optimization.get_scheduler).
        lr_warmup_steps: linear warm-up steps.
        lr_num_cycles: cycles of cosine_with_restarts.
        lr_power: power of the polynomial schedule.
        prior_loss_weight: lambda, the weight of the class (prior-preservation) loss.
        prediction_type: override the scheduler config's prediction type (epsilon or v_prediction).
        gradient_checkpointing: trade compute for memory in the UNet (and trained text encoder).
        ema: keep an exponential moving average of the trained weights.
        seed: the run seed: data order, augmentation, noise and LoRA initialisation follow from it.
        cache_latents: encode the training images with the VAE once (both flip states) instead of at
            every step, and keep the VAE off the training device. Valid where crops are fixed
            (data.center_crop, or images already square at the resolution); null: on wherever valid.
        cache_text_embeddings: encode the prompts once when the text encoder is frozen, and keep the
            text encoder off the training device; null: on whenever the text encoder is frozen.
        channels_last: UNet weights and inputs in channels_last memory format; null: on CUDA only.
        compile: torch.compile the UNet (slow first steps, faster after; needs a C++ compiler on CPU).
        allow_tf32: let float32 matmuls and convolutions use TF32 tensor cores on CUDA.
    """

    def __init__(
        self,
        base_model: str,
        revision: str | None = None,
        local_files_only: bool = False,
        vae: str | None = None,
        train_text_encoder: bool = False,
        train_token_embeddings: list[str] | None = None,
        lora: LoraSettings | None = None,
        learning_rate: float = 5e-6,
        text_encoder_learning_rate: float | None = None,
        scale_lr: bool = False,
        optimizer: Literal["adamw", "adamw8bit"] = "adamw",
        adam_beta1: float = 0.9,
        adam_beta2: float = 0.999,
        adam_weight_decay: float = 1e-2,
        adam_epsilon: float = 1e-8,
        lr_scheduler: SchedulerName = "constant",
        lr_warmup_steps: int = 0,
        lr_num_cycles: int = 1,
        lr_power: float = 1.0,
        prior_loss_weight: float = 1.0,
        prediction_type: Literal["epsilon", "v_prediction"] | None = None,
        gradient_checkpointing: bool = False,
        ema: EmaSettings | None = None,
        seed: int = 0,
        cache_latents: bool | None = None,
        cache_text_embeddings: bool | None = None,
        channels_last: bool | None = None,
        compile: bool = False,
        allow_tf32: bool = True,
    ) -> None:
        arguments = init_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
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
        self.base_model = base_model
        self.train_text_encoder = train_text_encoder
        self.train_token_embeddings = list(train_token_embeddings or [])
        # the text encoder is part of the graph (and the checkpoint) when any of its weights train
        self.text_trains = train_text_encoder or bool(self.train_token_embeddings)
        self.lora = lora
        self.ema_settings = ema
        self.seed = seed
        self.strict_loading = False  # checkpoints leave out the frozen weights
        components = load_components(
            base_model, local_files_only=local_files_only, revision=revision, vae=vae
        )
        self.family = components.family
        if self.family is SDXL and self.train_token_embeddings:
            raise GroundglassError(
                "model.train_token_embeddings is for one text encoder; SDXL has two",
                "set model.train_token_embeddings to null, or train the text encoders "
                "(model.train_text_encoder: true, with LoRA)",
            )
        use_sdpa_attention(components.unet)
        self.unet = components.unet
        self._frozen = _FrozenParts(
            components.vae,
            None if self.text_trains else components.text_encoder,
            None if self.text_trains else components.text_encoder_2,
        )
        if self.text_trains:  # trained: registered submodules (moved, checkpointed, wrapped by DDP)
            self._modules["text_encoder"] = components.text_encoder
            if components.text_encoder_2 is not None:
                self._modules["text_encoder_2"] = components.text_encoder_2
        self.tokenizer = components.tokenizer
        self.tokenizer_2 = components.tokenizer_2
        self.noise_scheduler = components.noise_scheduler
        if prediction_type is not None:
            self.noise_scheduler.register_to_config(prediction_type=prediction_type)
        self.prediction_type: str = self.noise_scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise GroundglassError(
                f"unsupported prediction type {self.prediction_type!r} in the scheduler config",
                "set model.prediction_type to epsilon or v_prediction",
            )
        configure_trainable(
            components,
            train_text_encoder=train_text_encoder,
            lora=lora,
            seed=seed,
            train_token_embeddings=self.train_token_embeddings,
        )
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if train_text_encoder:
                kwargs = {"use_reentrant": False}
                for encoder in self.text_encoders():
                    if hasattr(encoder, "activation_checkpointing_enable"):  # transformers >= 5 name
                        encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
                    else:
                        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.ema: Any = None
        self._pending_ema: dict[str, Any] | None = None
        self._input_ids: dict[tuple[str, str], torch.Tensor] = {}
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._hidden_by_prompts: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._model_configured = False
        self._channels_last = False
        self.display_loss: torch.Tensor | None = None  # the last logged loss, for the progress bar
        self.cache_report: dict[str, Any] = {}
        self.train()  # from_pretrained returns eval-mode models; Lightning keeps the modes it is given

    # -- the parts ------------------------------------------------------------------------------

    @property
    def vae(self) -> Any:
        """The frozen VAE (not a registered submodule: see :class:`_FrozenParts`)."""
        return self._frozen.vae

    @property
    def text_encoder(self) -> Any:
        """The text encoder: a registered submodule when it trains, held aside when frozen."""
        return self._modules["text_encoder"] if self.text_trains else self._frozen.text_encoder

    @property
    def text_encoder_2(self) -> Any:
        """SDXL's second text encoder (None for SD 1.x/2.x), held like the first."""
        if self.text_trains:
            return self._modules.get("text_encoder_2")
        return self._frozen.text_encoder_2

    def text_encoders(self) -> list[Any]:
        """The text encoders, first then second."""
        return [e for e in (self.text_encoder, self.text_encoder_2) if e is not None]

    def tokenizers(self) -> list[Any]:
        return [t for t in (self.tokenizer, self.tokenizer_2) if t is not None]

    def frozen_parts(self) -> list[torch.nn.Module]:
        """The modules kept off the training device when their outputs are cached."""
        parts = [self._frozen.vae]
        for encoder in (self._frozen.text_encoder, self._frozen.text_encoder_2):
            if encoder is not None:
                parts.append(encoder)
        return parts

    @contextmanager
    def frozen_parts_on(self, device: torch.device | str) -> Iterator[None]:
        """Move the frozen parts to ``device`` for the duration (sampling), then back where they were."""
        places = [(part, next(part.parameters()).device) for part in self.frozen_parts()]
        for part, _ in places:
            part.to(device)
        try:
            yield
        finally:
            for part, place in places:
                part.to(place)

    # -- what trains ------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> DreamBoothModule:
        super().train(mode)
        self.vae.eval()
        if not self.train_text_encoder:  # only some embeddings (or nothing) train: no dropout either way
            for encoder in self.text_encoders():
                encoder.eval()
        return self

    def trainable_keys(self) -> list[str]:
        return [name for name, p in self.named_parameters() if p.requires_grad]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def run_fields(self) -> dict[str, Any]:
        """What makes two checkpoints parts of one run (compared on resume)."""
        fields: dict[str, Any] = {
            "base_model": resolve_base_model(self.base_model),
            "revision": self.hparams.get("revision"),
            "vae": self.hparams.get("vae"),
            "train_text_encoder": self.train_text_encoder,
            "lora": to_plain(self.lora),
            "train_token_embeddings": self.train_token_embeddings,
            "prediction_type": self.prediction_type,
            "seed": self.seed,
        }
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "fingerprint_fields"):
            fields.update(to_plain(datamodule.fingerprint_fields()))
        return fields

    # -- the step ------------------------------------------------------------------------------

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        return (self.vae.config.latent_channels, height // factor, width // factor)

    def draw(self, seeds: list[int], shape: tuple[int, int, int]) -> tuple[torch.Tensor, ...]:
        """Per example, from its own generator: timestep, VAE-sample noise, diffusion noise."""
        steps, eps, noise = [], [], []
        num_timesteps = self.noise_scheduler.config.num_train_timesteps
        for seed in seeds:
            gen = torch.Generator().manual_seed(int(seed))
            steps.append(torch.randint(0, num_timesteps, (1,), generator=gen))
            eps.append(torch.randn(shape, generator=gen))
            noise.append(torch.randn(shape, generator=gen))
        return (
            torch.cat(steps).to(self.device),
            torch.stack(eps).to(self.device),
            torch.stack(noise).to(self.device),
        )

    def encode_images(self, pixels: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Scaled latents of ``pixels``: one VAE pass, then the sample ``mean + std * eps``."""
        with torch.no_grad():
            return sample_latents(
                self.vae.config, latent_moments(self.vae, pixels.to(self.vae.device)), eps.to(self.vae.device)
            ).to(self.device)

    def input_ids(
        self, prompts: list[str], device: torch.device | None = None, which: int = 0
    ) -> torch.Tensor:
        """Token ids of ``prompts`` for text encoder ``which`` (0, or 1 for SDXL's second)."""
        device = device or self.device
        tokenizer = self.tokenizers()[which]
        rows = []
        for prompt in prompts:
            key = (prompt, str(device), which)
            if key not in self._input_ids:
                self._input_ids[key] = token_ids(tokenizer, [prompt])[0].to(device)
            rows.append(self._input_ids[key])
        return torch.stack(rows)

    def encode_conditioning(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(hidden states, pooled embedding or None) of ``prompts`` (see :func:`sdxl.encode_text`)."""
        if self._text_cache and not self.text_trains:
            return self._cached_conditioning(prompts)
        context = nullcontext() if self.text_trains else torch.no_grad()
        with context:
            encoders = self.text_encoders()
            ids = [
                self.input_ids(prompts, next(e.parameters()).device, which)
                for which, e in enumerate(encoders)
            ]
            hidden, pooled = encode_text(encoders, ids)
            return hidden.to(self.device), None if pooled is None else pooled.to(self.device)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """The hidden states of ``prompts`` (the UNet's ``encoder_hidden_states``)."""
        return self.encode_conditioning(prompts)[0]

    def _cached_conditioning(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = tuple(prompts)
        found = self._hidden_by_prompts.get(key)
        if found is None:
            missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
            if missing:  # a prompt the cache was not built for: encode it where the encoder is, once
                self._text_cache.update(self._encode_prompt_cache(missing))
            hidden = torch.cat([self._text_cache[p][0] for p in prompts])
            pooled_parts = [self._text_cache[p][1] for p in prompts]
            pooled = None if pooled_parts[0] is None else torch.cat(pooled_parts)  # type: ignore[arg-type]
            found = (hidden, pooled)
            self._hidden_by_prompts[key] = found
        return found

    def diffusion_loss(
        self,
        latents: torch.Tensor,
        hidden: torch.Tensor,
        timesteps: torch.Tensor,
        noise: torch.Tensor,
        n_instance: int,
        pooled: torch.Tensor | None = None,
        time_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One UNet pass over all examples; the first ``n_instance`` are instance examples.

        SDXL also takes the pooled embedding and each example's size/crop ``time_ids``.
        """
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        if self._channels_last:
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        extra = added_conditions(pooled, time_ids)
        pred = self.unet(noisy, timesteps, hidden, return_dict=False, **extra)[0].float()
        if self.prediction_type == "epsilon":
            target = noise
        else:
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        target = target.float()
        out = {"loss_instance": F.mse_loss(pred[:n_instance], target[:n_instance])}
        if n_instance < pred.shape[0]:
            out["loss_prior"] = F.mse_loss(pred[n_instance:], target[n_instance:])
            out["loss"] = out["loss_instance"] + self.hparams.prior_loss_weight * out["loss_prior"]
        else:
            out["loss"] = out["loss_instance"]
        return out

    @staticmethod
    def batch_kinds(batch: dict[str, Any]) -> list[str]:
        """The kinds of examples in a batch, instance first."""
        return [kind for kind in ("instance", "class") if f"{kind}_seeds" in batch]

    def batch_latents(self, batch: dict[str, Any], kinds: list[str], eps: torch.Tensor) -> torch.Tensor:
        """Scaled latents of every example, in batch order: cached moments where the batch has them,
        one VAE pass over the pixels of the rest."""
        sizes = [len(batch[f"{kind}_seeds"]) for kind in kinds]
        eps_parts = dict(zip(kinds, eps.split(sizes), strict=True))
        pixel_kinds = [kind for kind in kinds if f"{kind}_pixels" in batch]
        parts: dict[str, torch.Tensor] = {}
        if pixel_kinds:
            pixels = torch.cat([batch[f"{kind}_pixels"] for kind in pixel_kinds])
            encoded = self.encode_images(pixels, torch.cat([eps_parts[kind] for kind in pixel_kinds]))
            parts.update(
                zip(pixel_kinds, encoded.split([len(batch[f"{k}_seeds"]) for k in pixel_kinds]), strict=True)
            )
        for kind in kinds:
            if kind not in parts:
                moments = batch[f"{kind}_latents"].to(self.device, non_blocking=True)
                parts[kind] = sample_latents(self.vae.config, moments, eps_parts[kind])
        return parts[kinds[0]] if len(kinds) == 1 else torch.cat([parts[kind] for kind in kinds])

    def batch_latent_shape(self, batch: dict[str, Any], kinds: list[str]) -> tuple[int, int, int]:
        for kind in kinds:
            if f"{kind}_latents" in batch:
                return tuple(batch[f"{kind}_latents"].shape[-3:])  # type: ignore[return-value]
        pixels = batch[f"{kinds[0]}_pixels"]
        return self.latent_shape(pixels.shape[-2], pixels.shape[-1])

    def step_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The losses of one micro-batch: instance and class examples in ONE UNet pass."""
        kinds = self.batch_kinds(batch)
        seeds = [s for kind in kinds for s in batch[f"{kind}_seeds"]]
        prompts = [p for kind in kinds for p in batch[f"{kind}_prompts"]]
        timesteps, eps, noise = self.draw(seeds, self.batch_latent_shape(batch, kinds))
        latents = self.batch_latents(batch, kinds, eps)
        hidden, pooled = self.encode_conditioning(prompts)
        time_ids = None
        if pooled is not None:
            time_ids = torch.cat([batch[f"{kind}_time_ids"] for kind in kinds]).to(self.device)
        return self.diffusion_loss(
            latents, hidden, timesteps, noise, len(batch["instance_seeds"]), pooled=pooled, time_ids=time_ids
        )

    def logs_this_step(self) -> bool:
        """Whether Lightning writes this optimizer step's metrics (the only steps that read values back)."""
        trainer = self._trainer
        if trainer is None:
            return True
        every = trainer.log_every_n_steps
        if not every:
            return False
        step = trainer.global_step + 1  # the optimizer step this micro-batch belongs to
        return step % every == 0 or (trainer.max_steps is not None and 0 < trainer.max_steps <= step)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.step_losses(batch)
        if self.logs_this_step():  # device tensors; Lightning reads them back only when it writes logs
            n = len(batch["instance_seeds"])
            metrics = {f"train/{k}": v.detach() for k, v in losses.items()}
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=False, batch_size=n, sync_dist=True)
            self.display_loss = metrics["train/loss"]
            schedulers = self.lr_schedulers()
            if schedulers is not None:
                scheduler = schedulers[0] if isinstance(schedulers, list) else schedulers
                self.log("train/lr", float(scheduler.get_last_lr()[0]), on_step=True, batch_size=n)
        return losses["loss"]

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)  # free the gradients instead of writing zeros into them

    # -- optimizer, schedule, EMA ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        from diffusers.optimization import get_scheduler

        hp = self.hparams
        trainer = self.trainer
        max_steps = trainer.max_steps
        if max_steps is None or max_steps < 1:
            raise GroundglassError(
                "trainer.max_steps is not set",
                "DreamBooth counts training in optimizer steps: set e.g. trainer.max_steps: 800",
            )
        scale = 1
        if hp.scale_lr:
            batch_size = getattr(trainer.datamodule, "batch_size", 1) if trainer.datamodule is not None else 1
            scale = batch_size * trainer.world_size * trainer.accumulate_grad_batches
        groups = [
            {
                "params": [p for p in self.unet.parameters() if p.requires_grad],
                "lr": hp.learning_rate * scale,
                "name": "unet",
            }
        ]
        text_params = [p for e in self.text_encoders() for p in e.parameters() if p.requires_grad]
        if text_params:
            group = {
                "params": text_params,
                "name": "text_encoder",
                "lr": (hp.text_encoder_learning_rate or hp.learning_rate) * scale,
            }
            if self.train_token_embeddings:  # no decay: it would shrink every other word's embedding too
                group["weight_decay"] = 0.0
            groups.append(group)
        optimizer = make_optimizer(
            hp.optimizer,
            groups,
            betas=(hp.adam_beta1, hp.adam_beta2),
            weight_decay=hp.adam_weight_decay,
            eps=hp.adam_epsilon,
            kernel=self.adamw_kernel([p for g in groups for p in g["params"]]),
        )
        scheduler = get_scheduler(
            hp.lr_scheduler,
            optimizer,
            num_warmup_steps=hp.lr_warmup_steps,
            num_training_steps=max_steps,
            num_cycles=hp.lr_num_cycles,
            power=hp.lr_power,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def adamw_kernel(self, params: list[torch.nn.Parameter]) -> dict[str, bool]:
        """Which torch AdamW implementation to use (see :func:`adamw_kernel`)."""
        return adamw_kernel(params)  # Lightning moved the module to its device before asking

    # -- kernels and caches (set up once the trainer knows the device) ------------------------------

    def configure_model(self) -> None:
        """channels_last, TF32 and torch.compile, decided for the training device."""
        if self._model_configured:
            return
        self._model_configured = True
        hp = self.hparams
        device = self.trainer.strategy.root_device
        if device.type == "cuda" and hp.get("allow_tf32", True):
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        channels_last = hp.get("channels_last")
        self._channels_last = device.type == "cuda" if channels_last is None else bool(channels_last)
        if self._channels_last:
            self.unet.to(memory_format=torch.channels_last)
        if hp.get("compile"):
            self.unet.compile()  # in place: parameter names (and checkpoints) stay as they are

    def latent_cache_kinds(self) -> list[str]:
        """The image sets whose latents are cached in this run (empty when caching is off or invalid)."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        setting = self.hparams.get("cache_latents")
        if setting is False or datamodule is None or not hasattr(datamodule, "cacheable_kinds"):
            return []
        kinds = list(datamodule.cacheable_kinds())
        if setting:
            random_kinds = [k for k in datamodule.image_sets() if k not in kinds]
            if random_kinds:
                raise GroundglassError(
                    f"model.cache_latents: true, but the {' and '.join(random_kinds)} images are randomly "
                    "cropped (data.center_crop is false and they are not square), so their latents change "
                    "from step to step",
                    "set data.center_crop: true (or use square images), or set model.cache_latents to null "
                    "(cache what can be cached) or false",
                )
        return kinds

    def prepare_caches(self) -> None:
        """Encode the cached latents and prompts on the training device, then place the frozen parts:
        off the device when their outputs are cached, on it when a step still needs them."""
        from lightning.pytorch.utilities import rank_zero_info

        trainer = self.trainer
        device = self.device
        cpu = torch.device("cpu")
        context = trainer.precision_plugin.forward_context
        datamodule = getattr(trainer, "datamodule", None)
        report: dict[str, Any] = {"latents": [], "text_embeddings": False}

        kinds = self.latent_cache_kinds()
        if kinds:
            self.vae.to(device)
            cache = {
                kind: encode_latent_cache(
                    self.vae, datamodule.cache_views(kind), device=device, context=context
                )
                for kind in kinds
            }
            datamodule.set_latent_cache(cache)
            report["latents"] = [
                f"{kind} ({cache[kind].shape[0]} images x {cache[kind].shape[1]} flips)" for kind in kinds
            ]
        elif datamodule is not None and hasattr(datamodule, "set_latent_cache"):
            datamodule.set_latent_cache({})
        all_cached = (
            datamodule is not None
            and hasattr(datamodule, "image_sets")
            and set(kinds) == set(datamodule.image_sets())
        )
        self.vae.to(cpu if all_cached else device)

        self._text_cache, self._hidden_by_prompts = {}, {}
        text_setting = self.hparams.get("cache_text_embeddings")
        if not self.text_trains:
            cache_text = (
                text_setting is not False and datamodule is not None and hasattr(datamodule, "prompts")
            )
            if cache_text:
                for encoder in self.text_encoders():
                    encoder.to(device)
                self._text_cache = self._encode_prompt_cache(list(datamodule.prompts()))
                report["text_embeddings"] = True
            for encoder in self.text_encoders():
                encoder.to(cpu if cache_text else device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)  # the peak of training, not of building the caches
        self.cache_report = report
        cached = [*report["latents"], *(["text embeddings"] if report["text_embeddings"] else [])]
        rank_zero_info(
            "cached: "
            + (", ".join(cached) if cached else "nothing")
            + f"; VAE on {next(self.vae.parameters()).device}, text encoder on "
            f"{next(self.text_encoder.parameters()).device}"
        )

    def _encode_prompt_cache(self, prompts: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        encoders = self.text_encoders()
        context = self._trainer.precision_plugin.forward_context if self._trainer is not None else nullcontext

        def encode(batch: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
            ids = [self.input_ids(batch, next(e.parameters()).device, i) for i, e in enumerate(encoders)]
            return encode_text(encoders, ids)

        cache = encode_prompt_cache(encode, prompts, context=context)
        return {
            p: (h.to(self.device), None if pooled is None else pooled.to(self.device))
            for p, (h, pooled) in cache.items()
        }

    def on_fit_start(self) -> None:
        self.prepare_caches()
        if self.ema_settings is not None and self.ema is None:
            from diffusers.training_utils import EMAModel

            s = self.ema_settings
            self.ema = EMAModel(
                self.trainable_parameters(),
                decay=s.decay,
                use_ema_warmup=s.warmup,
                power=s.power,
                update_after_step=s.update_after_step,
                foreach=True,
            )
            if self._pending_ema is not None:
                self.ema.load_state_dict(self._pending_ema)
                self._pending_ema = None
            self.ema.to(self.device)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.step(self.trainable_parameters())

    # -- checkpoints ---------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keys = self.trainable_keys()
        keep = set(keys)
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):
            if key in checkpoint:
                checkpoint[key] = to_plain(dict(checkpoint[key]))
        checkpoint["groundglass"] = {
            "format": CHECKPOINT_FORMAT,
            "run": self.run_fields(),
            "trainable_keys": keys,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": _rng_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("groundglass")
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise GroundglassError(
                "the checkpoint is not a groundglass DreamBooth checkpoint (or from a newer version)",
                "resume from a last.ckpt written by `groundglass dreambooth fit`",
            )
        check_same_run(meta["run"], self.run_fields())
        expected, found = set(self.trainable_keys()), set(checkpoint.get("state_dict", {}))
        if expected != found:
            raise GroundglassError(
                f"the checkpoint's trained weights do not match this config ({len(found & expected)} of "
                f"{len(expected)} trainable tensors found, {len(found - expected)} unexpected)",
                "resume with the config the checkpoint was trained with (what trains, LoRA settings)",
            )
        self._pending_ema = meta.get("ema")
        if meta.get("rng"):
            _set_rng_state(meta["rng"])

    # -- sampling ------------------------------------------------------------------------------

    def components(self) -> Components:
        return Components(
            unet=self.unet,
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            noise_scheduler=self.noise_scheduler,
            family=self.family,
            text_encoder_2=self.text_encoder_2,
            tokenizer_2=self.tokenizer_2,
        )
