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

The engineering around the step lives beside it: :mod:`~groundglass.dreambooth.parts` (the model's
parts, where each lives, the latents and text conditioning they give a step),
:mod:`~groundglass.dreambooth.frozen` (the frozen parts, their caches and placement),
:mod:`~groundglass.dreambooth.conditioning` (prompts to text conditioning),
:mod:`~groundglass.dreambooth.optim` (optimizer, schedule, EMA) and
:mod:`~groundglass.dreambooth.resume` (what a checkpoint holds, and the checks on resume).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from groundglass.dreambooth.family import SDXL
from groundglass.dreambooth.frozen import cache_latents, cache_summary, latent_cache_kinds
from groundglass.dreambooth.hparams import check_model_settings, init_arguments, to_plain
from groundglass.dreambooth.model import (
    LoraSettings,
    enable_gradient_checkpointing,
    load_components,
    resolve_base_model,
    use_sdpa_attention,
)
from groundglass.dreambooth.optim import (
    EmaSettings,
    SchedulerName,
    adamw_kernel,
    lr_scale,
    lr_schedule,
    make_ema,
    make_optimizer,
    param_groups,
    training_steps,
)
from groundglass.dreambooth.parts import ModelParts
from groundglass.dreambooth.resume import check_checkpoint, set_rng_state, slim_checkpoint
from groundglass.dreambooth.sdxl import added_conditions
from groundglass.dreambooth.trained import configure_trainable
from groundglass.errors import GroundglassError

__all__ = ["DreamBoothModule", "EmaSettings", "adamw_kernel", "make_optimizer"]


class DreamBoothModule(ModelParts):
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
        """Check the settings, load the parts and say what trains (the arguments: see the class).

        Long because the signature is the config's ``model:`` section, one line per setting; the
        body is the checks and the setup steps in the order they must run.
        """
        arguments = init_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        check_model_settings(
            learning_rate=learning_rate,
            prior_loss_weight=prior_loss_weight,
            train_text_encoder=train_text_encoder,
            train_token_embeddings=train_token_embeddings,
            cache_text_embeddings=cache_text_embeddings,
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
        self.hold_parts(components)
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
            enable_gradient_checkpointing(self.unet, self.text_encoders() if train_text_encoder else [])
        self.ema: Any = None
        self._pending_ema: dict[str, Any] | None = None
        self._model_configured = False
        self._channels_last = False
        self.display_loss: torch.Tensor | None = None  # the last logged loss, for the progress bar
        self.cache_report: dict[str, Any] = {}
        self.train()  # from_pretrained returns eval-mode models; Lightning keeps the modes it is given

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
        hp = self.hparams
        max_steps = training_steps(self.trainer)
        groups = param_groups(
            self.unet,
            self.text_encoders(),
            learning_rate=hp.learning_rate,
            text_encoder_learning_rate=hp.text_encoder_learning_rate,
            scale=lr_scale(self.trainer, hp.scale_lr),
            only_token_embeddings=bool(self.train_token_embeddings),
        )
        optimizer = make_optimizer(
            hp.optimizer,
            groups,
            betas=(hp.adam_beta1, hp.adam_beta2),
            weight_decay=hp.adam_weight_decay,
            eps=hp.adam_epsilon,
            kernel=self.adamw_kernel([p for g in groups for p in g["params"]]),
        )
        return {"optimizer": optimizer, "lr_scheduler": lr_schedule(optimizer, hp, max_steps)}

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
        return latent_cache_kinds(self.hparams.get("cache_latents"), datamodule)

    def prepare_caches(self) -> None:
        """Encode the cached latents and prompts on the training device, then place the frozen parts:
        off the device when their outputs are cached, on it when a step still needs them."""
        from lightning.pytorch.utilities import rank_zero_info

        device = self.device
        datamodule = getattr(self.trainer, "datamodule", None)
        latents = cache_latents(
            self.vae, datamodule, self.latent_cache_kinds(), device=device, context=self.forward_context()
        )
        report: dict[str, Any] = {"latents": latents, "text_embeddings": False}
        self.prompt_encoder.reset_cache()
        if not self.text_trains:
            setting = self.hparams.get("cache_text_embeddings")
            cache_text = setting is not False and datamodule is not None and hasattr(datamodule, "prompts")
            if cache_text:
                for encoder in self.text_encoders():
                    encoder.to(device)
                self.prompt_encoder.reset_cache(
                    self.prompt_encoder.encode_each(
                        self.text_encoders(),
                        list(datamodule.prompts()),
                        device=device,
                        context=self.forward_context(),
                    )
                )
                report["text_embeddings"] = True
            for encoder in self.text_encoders():
                encoder.to(torch.device("cpu") if cache_text else device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)  # the peak of training, not of building the caches
        self.cache_report = report
        rank_zero_info(cache_summary(report, self.vae, self.text_encoder))

    def on_fit_start(self) -> None:
        self.prepare_caches()
        if self.ema_settings is not None and self.ema is None:
            self.ema = make_ema(self.ema_settings, self.trainable_parameters(), self._pending_ema)
            self._pending_ema = None
            self.ema.to(self.device)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.step(self.trainable_parameters())

    # -- checkpoints ---------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        slim_checkpoint(
            checkpoint,
            trainable_keys=self.trainable_keys(),
            run=self.run_fields(),
            ema=self.ema.state_dict() if self.ema is not None else None,
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = check_checkpoint(checkpoint, run=self.run_fields(), trainable_keys=self.trainable_keys())
        self._pending_ema = meta.get("ema")
        if meta.get("rng"):
            set_rng_state(meta["rng"])
