"""Training callbacks: stop cleanly on a signal, measure speed and memory, log sample images.

- ``GracefulStop``: SIGTERM or SIGINT (Ctrl+C) finishes the current optimizer step, then training
  stops and the checkpoint callback writes ``last.ckpt``; in DDP the ranks agree on the stop first,
  every ``agree_every_n_steps`` steps (agreeing is a collective call that waits for the devices).
  A second Ctrl+C interrupts at once. It replaces Lightning's own SIGTERM handler for the length of
  training, which raises an exception instead of saving.
- ``TrainingMonitor``: optimizer steps per second and peak memory (CUDA peak allocated on a GPU,
  peak RSS on the CPU), logged on logging steps.
- ``StepProgressBar``: Lightning's rich progress bar, counting steps rather than epochs (the data is an
  endless stream, so epochs mean nothing here). It shows the last logged loss, read back from the
  device once per logging interval (not at every step, which would stall the GPU queue).
- ``SampleImages``: every N steps, images from fixed prompts and seeds (with the EMA weights when
  kept), saved as PNG under ``<default_root_dir>/samples`` and sent to TensorBoard / W&B.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.utilities import rank_zero_info


class GracefulStop(Callback):
    """Turn SIGTERM/SIGINT into "finish this step, save, stop".

    Args:
        agree_every_n_steps: with several processes, how often (in optimizer steps) they agree on
            whether to stop; a signal then stops training within that many steps.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, agree_every_n_steps: int = 10) -> None:
        self.agree_every_n_steps = max(1, agree_every_n_steps)
        self.received: int | None = None
        self.stopped_at: int | None = None
        self._previous: dict[int, Any] = {}
        self._last_step = -1

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            self._restore()
            raise KeyboardInterrupt
        self.received = signum
        print(
            f"\nreceived {signal.Signals(signum).name}: finishing this step, then saving a checkpoint "
            "(Ctrl+C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.received = None
        self.stopped_at = None
        self._last_step = trainer.global_step
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        stepped = trainer.global_step != self._last_step
        self._last_step = trainer.global_step
        if not stepped:  # mid-accumulation: only stop on an optimizer-step boundary
            return
        stop = self.received is not None
        if trainer.world_size > 1:  # every rank takes part, so the collective calls stay in step
            if trainer.global_step % self.agree_every_n_steps:
                return
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self.received = self.received or signal.SIGTERM
            self.stopped_at = trainer.global_step
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()


def logs_at(trainer: pl.Trainer, step: int) -> bool:
    """Whether Lightning writes the metrics of optimizer step ``step`` (counted from 1)."""
    every = trainer.log_every_n_steps
    if not every:
        return False
    return step % every == 0 or (trainer.max_steps is not None and 0 < trainer.max_steps <= step)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA peak allocated memory on a GPU, the process's peak RSS elsewhere, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


class TrainingMonitor(Callback):
    """Log ``perf/steps_per_sec``, ``perf/sec_per_step`` and ``perf/peak_memory_mb`` on logging steps.

    The speed is a moving average over the last steps, after the first (warm-up) step. The clock is
    read without waiting for the device, so single steps may be uneven on a GPU; the average is not.
    """

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self._last_step = -1
        self._last_time = 0.0
        self._avg: float | None = None
        self._seen = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_step = trainer.global_step
        self._last_time = time.perf_counter()
        self._avg = None
        self._seen = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self._last_step:
            return
        now = time.perf_counter()
        per_step = (now - self._last_time) / (trainer.global_step - self._last_step)
        self._last_step, self._last_time = trainer.global_step, now
        self._seen += 1
        if self._seen <= 2:  # the first step carries the warm-up; the average starts at the second
            self._avg = per_step
        else:
            assert self._avg is not None
            self._avg = self.smoothing * self._avg + (1 - self.smoothing) * per_step
        if not logs_at(trainer, trainer.global_step):
            return
        pl_module.log("perf/sec_per_step", self._avg, on_step=True, on_epoch=False, batch_size=1)
        pl_module.log(
            "perf/steps_per_sec", 1.0 / max(self._avg, 1e-9), on_step=True, on_epoch=False, batch_size=1
        )
        pl_module.log(
            "perf/peak_memory_mb",
            peak_memory_mb(pl_module.device),
            on_step=True,
            on_epoch=False,
            batch_size=1,
        )


class StepProgressBar(RichProgressBar):
    """A progress bar labelled in steps, without Lightning's logger version number."""

    def _get_train_description(self, current_epoch: int) -> str:
        return "DreamBooth"

    @property
    def total_train_batches(self) -> int | float:
        """All micro-batches of the run (the count goes on across a resume)."""
        trainer = self.trainer
        if trainer.max_steps and trainer.max_steps > 0:
            return trainer.max_steps * trainer.accumulate_grad_batches
        return super().total_train_batches

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loss_tensor: torch.Tensor | None = None
        self._loss_value: float | None = None

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        loss = getattr(pl_module, "display_loss", None)
        if loss is not None and loss is not self._loss_tensor:  # a new logged loss: read it back once
            self._loss_tensor, self._loss_value = loss, float(loss)
        if self._loss_value is not None:
            items["loss"] = f"{self._loss_value:.4g}"
        return items


@contextmanager
def weights_for_sampling(pl_module: pl.LightningModule, *, use_ema: bool = True) -> Iterator[None]:
    """Draw with the weights being trained: the EMA weights when the run keeps them and ``use_ema``
    (the live weights are put back afterwards), and the frozen parts moved to the module's device."""
    ema = getattr(pl_module, "ema", None) if use_ema else None
    params = pl_module.trainable_parameters() if ema is not None else []
    if ema is not None:
        ema.store(params)
        ema.copy_to(params)
    frozen_on_device = getattr(pl_module, "frozen_parts_on", None)
    placement = frozen_on_device(pl_module.device) if frozen_on_device is not None else nullcontext()
    try:
        with placement:
            yield
    finally:
        if ema is not None:
            ema.restore(params)


class SampleImages(Callback):
    """Sample images from fixed prompts and seeds during training.

    Args:
        every_n_steps: sample every this many optimizer steps (0: never during training).
        at_end: sample once more when training ends.
        prompts: prompts to draw; default: the instance prompt.
        negative_prompt: optional negative prompt.
        seeds: one image per prompt and seed.
        steps: denoising steps.
        guidance_scale: classifier-free guidance scale.
        scheduler: sampler: ddim, dpm++ or euler.
        use_ema: draw with the EMA weights when the run keeps them.
    """

    def __init__(
        self,
        every_n_steps: int = 0,
        at_end: bool = True,
        prompts: list[str] | None = None,
        negative_prompt: str | None = None,
        seeds: list[int] | None = None,
        steps: int = 25,
        guidance_scale: float = 7.5,
        scheduler: str = "ddim",
        use_ema: bool = True,
    ) -> None:
        self.every_n_steps = every_n_steps
        self.at_end = at_end
        self.prompts = prompts
        self.negative_prompt = negative_prompt
        self.seeds = seeds if seeds is not None else [0]
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.scheduler = scheduler
        self.use_ema = use_ema
        self._last_step = -1
        self._sampled_at = -1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        stepped = trainer.global_step != self._last_step
        self._last_step = trainer.global_step
        if stepped and self.every_n_steps > 0 and trainer.global_step % self.every_n_steps == 0:
            self.sample(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_end and self._sampled_at != trainer.global_step:
            self.sample(trainer, pl_module)

    def sample(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[Path]:
        """Draw, save and log the sample images (global rank 0 only); return the PNG paths."""
        self._sampled_at = trainer.global_step
        if not trainer.is_global_zero:
            return []
        from groundglass.dreambooth.sample import generate

        datamodule = trainer.datamodule
        prompts = self.prompts or [getattr(datamodule, "instance_prompt", "a photo")]
        size = getattr(datamodule, "resolution", None)
        pairs = [(p, s) for p in prompts for s in self.seeds]
        with weights_for_sampling(pl_module, use_ema=self.use_ema):
            images = generate(
                pl_module.components(),
                [p for p, _ in pairs],
                negative_prompt=self.negative_prompt,
                guidance_scale=self.guidance_scale,
                steps=self.steps,
                scheduler=self.scheduler,
                seeds=[s for _, s in pairs],
                height=size,
                width=size,
                batch_size=len(pairs),
            )
        folder = Path(trainer.default_root_dir) / "samples" / f"step_{trainer.global_step:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, ((_, seed), image) in enumerate(zip(pairs, images, strict=True)):
            path = folder / f"{i:02d}-seed{seed}.png"
            image.save(path)
            paths.append(path)
        self._log(trainer, pairs, images)
        rank_zero_info(f"samples at step {trainer.global_step}: {folder}")
        return paths

    def _log(self, trainer: pl.Trainer, pairs: list[tuple[str, int]], images: list[Any]) -> None:
        import numpy as np
        from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for i, ((prompt, seed), image) in enumerate(zip(pairs, images, strict=True)):
                    logger.experiment.add_image(
                        f"samples/{i:02d}", np.asarray(image), trainer.global_step, dataformats="HWC"
                    )
                    logger.experiment.add_text(
                        f"samples/{i:02d}", f"{prompt} (seed {seed})", trainer.global_step
                    )
            elif isinstance(logger, WandbLogger):
                logger.log_image(
                    "samples",
                    images=list(images),
                    step=trainer.global_step,
                    caption=[f"{p} (seed {s})" for p, s in pairs],
                )
