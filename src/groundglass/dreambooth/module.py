"""The LightningModule: what trains, what stays frozen, and the prior-preservation loss.

One training step reads top to bottom: draw each example's timestep and noise from its own seed,
encode images with the frozen VAE and prompts with the text encoder, noise the latents, run the UNet
ONCE on the instance and class examples together, and take

    loss = MSE(instance) + prior_loss_weight * MSE(class)

against the noise (epsilon) or the velocity (v_prediction), as the scheduler config says.

Checkpoints hold only the trainable weights (plus optimizer, LR scheduler, EMA, loop state, RNG
states, the base model and a run fingerprint); the frozen weights come from the base model when a
run resumes or a checkpoint is loaded with :func:`load_trained`.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from groundglass.dreambooth.hparams import init_arguments, to_plain
from groundglass.dreambooth.model import (
    Components,
    LoraSettings,
    attach_lora,
    freeze,
    load_components,
    resolve_base_model,
)
from groundglass.dreambooth.seeding import derive_seed
from groundglass.errors import GroundglassError

CHECKPOINT_FORMAT = 1
SchedulerName = Literal["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                        "polynomial"]


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
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                             "numpy": [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached]}
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


def make_optimizer(kind: str, groups: list[dict[str, Any]], *, betas: tuple[float, float],
                   weight_decay: float, eps: float) -> torch.optim.Optimizer:
    """AdamW; 8-bit AdamW (bitsandbytes) when asked for, on CUDA, and installed."""
    if kind == "adamw8bit":
        on_cuda = any(p.is_cuda for g in groups for p in g["params"])
        try:
            import bitsandbytes as bnb  # type: ignore[import-not-found]
        except ImportError:
            bnb = None
        if on_cuda and bnb is not None:
            return bnb.optim.AdamW8bit(groups, betas=betas, weight_decay=weight_decay, eps=eps)
        warnings.warn("model.optimizer adamw8bit needs a CUDA device and bitsandbytes; using torch AdamW",
                      stacklevel=2)
    return torch.optim.AdamW(groups, betas=betas, weight_decay=weight_decay, eps=eps)


class DreamBoothModule(pl.LightningModule):
    """DreamBooth fine-tuning of a Stable Diffusion 1.x/2.x model.

    Args:
        base_model: Hugging Face model id or local diffusers folder.
        revision: Hub revision of the base model.
        local_files_only: never download; use the folder or the local Hugging Face cache.
        train_text_encoder: train the text encoder too (full weights, or LoRA adapters with ``lora``).
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
    """

    def __init__(
        self,
        base_model: str,
        revision: str | None = None,
        local_files_only: bool = False,
        train_text_encoder: bool = False,
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
    ) -> None:
        arguments = init_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        if learning_rate <= 0:
            raise GroundglassError(f"model.learning_rate must be positive (got {learning_rate})",
                                   "use e.g. 5e-6 for full fine-tuning or 1e-4 for LoRA")
        if prior_loss_weight < 0:
            raise GroundglassError(f"model.prior_loss_weight must be >= 0 (got {prior_loss_weight})",
                                   "use 1.0 (the DreamBooth default) or 0 to switch the prior term off")
        self.base_model = base_model
        self.train_text_encoder = train_text_encoder
        self.lora = lora
        self.ema_settings = ema
        self.seed = seed
        self.strict_loading = False  # checkpoints leave out the frozen weights
        components = load_components(base_model, local_files_only=local_files_only, revision=revision)
        self.unet = components.unet
        self.vae = components.vae
        self.text_encoder = components.text_encoder
        self.tokenizer = components.tokenizer
        self.noise_scheduler = components.noise_scheduler
        if prediction_type is not None:
            self.noise_scheduler.register_to_config(prediction_type=prediction_type)
        self.prediction_type: str = self.noise_scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise GroundglassError(
                f"unsupported prediction type {self.prediction_type!r} in the scheduler config",
                "set model.prediction_type to epsilon or v_prediction")
        configure_trainable(components, train_text_encoder=train_text_encoder, lora=lora, seed=seed)
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if train_text_encoder:
                kwargs = {"use_reentrant": False}
                if hasattr(self.text_encoder, "activation_checkpointing_enable"):  # transformers >= 5 name
                    self.text_encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
                else:
                    self.text_encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.ema: Any = None
        self._pending_ema: dict[str, Any] | None = None
        self._input_ids: dict[str, torch.Tensor] = {}
        self.train()  # from_pretrained returns eval-mode models; Lightning keeps the modes it is given

    # -- what trains ------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> DreamBoothModule:
        super().train(mode)
        self.vae.eval()
        if not self.train_text_encoder:
            self.text_encoder.eval()
        return self

    def trainable_keys(self) -> list[str]:
        return [name for name, p in self.named_parameters() if p.requires_grad]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def run_fields(self) -> dict[str, Any]:
        """What makes two checkpoints parts of one run (compared on resume)."""
        fields: dict[str, Any] = {
            "base_model": resolve_base_model(self.base_model), "revision": self.hparams.get("revision"),
            "train_text_encoder": self.train_text_encoder, "lora": to_plain(self.lora),
            "prediction_type": self.prediction_type, "seed": self.seed}
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
        return (torch.cat(steps).to(self.device), torch.stack(eps).to(self.device),
                torch.stack(noise).to(self.device))

    def encode_images(self, pixels: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            dist = self.vae.encode(pixels.to(self.vae.dtype)).latent_dist
            latents = dist.mean + dist.std * eps.to(dist.mean.dtype)
            shift = getattr(self.vae.config, "shift_factor", None) or 0.0
            return ((latents - shift) * self.vae.config.scaling_factor).float()

    def input_ids(self, prompts: list[str]) -> torch.Tensor:
        rows = []
        for prompt in prompts:
            if prompt not in self._input_ids:
                self._input_ids[prompt] = self.tokenizer(
                    prompt, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids[0]
            rows.append(self._input_ids[prompt])
        return torch.stack(rows).to(self.device)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        context = nullcontext() if self.train_text_encoder else torch.no_grad()
        with context:
            return self.text_encoder(self.input_ids(prompts), return_dict=False)[0]

    def diffusion_loss(self, latents: torch.Tensor, hidden: torch.Tensor, timesteps: torch.Tensor,
                       noise: torch.Tensor, n_instance: int) -> dict[str, torch.Tensor]:
        """One UNet pass over all examples; the first ``n_instance`` are instance examples."""
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        pred = self.unet(noisy, timesteps, hidden, return_dict=False)[0].float()
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

    def step_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        pixels = batch["instance_pixels"]
        seeds = list(batch["instance_seeds"])
        prompts = list(batch["instance_prompts"])
        n_instance = pixels.shape[0]
        if "class_pixels" in batch:
            pixels = torch.cat([pixels, batch["class_pixels"]])
            seeds += list(batch["class_seeds"])
            prompts += list(batch["class_prompts"])
        timesteps, eps, noise = self.draw(seeds, self.latent_shape(pixels.shape[-2], pixels.shape[-1]))
        latents = self.encode_images(pixels, eps)
        hidden = self.encode_prompts(prompts)
        return self.diffusion_loss(latents, hidden, timesteps, noise, n_instance)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.step_losses(batch)
        n = batch["instance_pixels"].shape[0]
        metrics = {f"train/{k}": v.detach() for k, v in losses.items()}
        self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=False, batch_size=n, sync_dist=True)
        self.log("loss", losses["loss"].detach(), on_step=True, prog_bar=True, logger=False, batch_size=n)
        schedulers = self.lr_schedulers()
        if schedulers is not None:
            scheduler = schedulers[0] if isinstance(schedulers, list) else schedulers
            self.log("train/lr", float(scheduler.get_last_lr()[0]), on_step=True, batch_size=n)
        return losses["loss"]

    # -- optimizer, schedule, EMA ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        from diffusers.optimization import get_scheduler

        hp = self.hparams
        trainer = self.trainer
        max_steps = trainer.max_steps
        if max_steps is None or max_steps < 1:
            raise GroundglassError(
                "trainer.max_steps is not set",
                "DreamBooth counts training in optimizer steps: set e.g. trainer.max_steps: 800")
        scale = 1
        if hp.scale_lr:
            batch_size = getattr(trainer.datamodule, "batch_size", 1) if trainer.datamodule is not None else 1
            scale = batch_size * trainer.world_size * trainer.accumulate_grad_batches
        groups = [{"params": [p for p in self.unet.parameters() if p.requires_grad],
                   "lr": hp.learning_rate * scale, "name": "unet"}]
        text_params = [p for p in self.text_encoder.parameters() if p.requires_grad]
        if text_params:
            groups.append({"params": text_params, "name": "text_encoder",
                           "lr": (hp.text_encoder_learning_rate or hp.learning_rate) * scale})
        optimizer = make_optimizer(hp.optimizer, groups, betas=(hp.adam_beta1, hp.adam_beta2),
                                   weight_decay=hp.adam_weight_decay, eps=hp.adam_epsilon)
        scheduler = get_scheduler(hp.lr_scheduler, optimizer, num_warmup_steps=hp.lr_warmup_steps,
                                  num_training_steps=max_steps, num_cycles=hp.lr_num_cycles,
                                  power=hp.lr_power)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def on_fit_start(self) -> None:
        if self.ema_settings is not None and self.ema is None:
            from diffusers.training_utils import EMAModel

            s = self.ema_settings
            self.ema = EMAModel(self.trainable_parameters(), decay=s.decay, use_ema_warmup=s.warmup,
                                power=s.power, update_after_step=s.update_after_step)
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
            "format": CHECKPOINT_FORMAT, "run": self.run_fields(), "trainable_keys": keys,
            "ema": self.ema.state_dict() if self.ema is not None else None, "rng": _rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("groundglass")
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise GroundglassError(
                "the checkpoint is not a groundglass DreamBooth checkpoint (or from a newer version)",
                "resume from a last.ckpt written by `groundglass dreambooth fit`")
        check_same_run(meta["run"], self.run_fields())
        expected, found = set(self.trainable_keys()), set(checkpoint.get("state_dict", {}))
        if expected != found:
            raise GroundglassError(
                f"the checkpoint's trained weights do not match this config ({len(found & expected)} of "
                f"{len(expected)} trainable tensors found, {len(found - expected)} unexpected)",
                "resume with the config the checkpoint was trained with (what trains, LoRA settings)")
        self._pending_ema = meta.get("ema")
        if meta.get("rng"):
            _set_rng_state(meta["rng"])

    # -- sampling ------------------------------------------------------------------------------

    def components(self) -> Components:
        return Components(unet=self.unet, vae=self.vae, text_encoder=self.text_encoder,
                          tokenizer=self.tokenizer, noise_scheduler=self.noise_scheduler)


def configure_trainable(components: Components, *, train_text_encoder: bool, lora: LoraSettings | None,
                        seed: int) -> None:
    """Freeze what does not train (no gradients, eval mode); add LoRA adapters if asked."""
    freeze(components.vae)
    if lora is not None:
        attach_lora(components, lora, text_encoder=train_text_encoder, seed=derive_seed(seed, "lora-init"))
        if not train_text_encoder:
            freeze(components.text_encoder)
        return
    components.unet.requires_grad_(True)
    if train_text_encoder:
        components.text_encoder.requires_grad_(True)
    else:
        freeze(components.text_encoder)


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
            "--ckpt_path")
    diffs = [k for k in sorted(set(saved) & set(current)) if saved[k] != current[k]]
    if diffs:
        detail = "; ".join(f"{k}: checkpoint {saved[k]!r}, config {current[k]!r}" for k in diffs)
        raise GroundglassError(
            f"the checkpoint belongs to a different run ({detail})",
            "resume with the config the checkpoint was written with (config.yaml in the run's log folder), "
            "or start a new run without --ckpt_path")


def load_trained(ckpt_path: str | Path, *, use_ema: bool = True) -> tuple[Components, dict[str, Any]]:
    """The base model of a fit checkpoint with its trained weights applied (EMA weights if kept).

    Returns the components (LoRA adapters attached through peft when the run used LoRA) and the run's
    hyperparameters: the model's, plus ``data`` (the data module's), ``global_step`` and
    ``ema_applied``.
    """
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise GroundglassError(
            f"checkpoint {path} does not exist",
            "give a .ckpt written by `groundglass dreambooth fit` (e.g. RUN/checkpoints/last.ckpt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an UnpicklingError (Python objects inside) stays visible as __cause__
        raise GroundglassError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}",
                               "give a .ckpt written by `groundglass dreambooth fit`") from exc
    meta = checkpoint.get("groundglass") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        raise GroundglassError(f"{path} is not a groundglass DreamBooth checkpoint",
                               "give a .ckpt written by `groundglass dreambooth fit`")
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    base_model = meta["run"]["base_model"]
    if not Path(base_model).exists() and Path(str(hparams.get("base_model", ""))).exists():
        base_model = hparams["base_model"]
    components = load_components(base_model, local_files_only=bool(hparams.get("local_files_only")),
                                 revision=hparams.get("revision"))
    lora = LoraSettings(**hparams["lora"]) if hparams.get("lora") else None
    train_text_encoder = bool(hparams.get("train_text_encoder"))
    configure_trainable(components, train_text_encoder=train_text_encoder, lora=lora,
                        seed=int(hparams.get("seed", 0)))
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
    for prefix, module in (("unet.", components.unet), ("text_encoder.", components.text_encoder),
                           ("vae.", components.vae)):
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not sub:
            continue
        result = module.load_state_dict(sub, strict=False)
        if result.unexpected_keys:
            raise GroundglassError(f"checkpoint {path} does not fit its base model "
                                   f"({len(result.unexpected_keys)} unknown {prefix[:-1]} weights)",
                                   "make sure the base model folder is the one the run was trained from")
    for module in (components.unet, components.text_encoder, components.vae):
        module.requires_grad_(False)
        module.eval()
    info = {**hparams, "data": dict(checkpoint.get("datamodule_hyper_parameters", {})),
            "global_step": int(checkpoint.get("global_step", 0)), "ema_applied": ema_applied,
            "prediction_type": components.noise_scheduler.config.prediction_type}
    return components, info
