"""Watching a fit from the program that runs it: progress as events, and stop when asked.

:class:`FitWatcher` is a Lightning callback that hands each happening of a run to a function
``report(kind, data)``:

- ``start``: training begins at ``step`` of ``max_steps`` (``step`` > 0 after a resume; the program
  drops whatever it recorded past that step, since those steps run again);
- ``step``: on every logging step, the ``step``, the losses (``loss``, ``loss_instance``,
  ``loss_prior``), the learning rate, ``steps_per_sec`` (this attempt's steps since its second step)
  and ``eta_s``;
- ``checkpoint``: ``last.ckpt`` is about to be written at ``step`` (``flush`` is called first, so
  everything reported up to that step is stored before the checkpoint that makes it final);
- ``samples``: the PNG files the sampling callback wrote at ``step``;
- ``stopped``: training stopped at ``step`` because ``should_stop()`` said so.

Reading the losses is a device sync, so it happens only on logging steps (``trainer.log_every_n_steps``).
``should_stop`` is called once per optimizer step and must be cheap (a flag, not a database query).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from groundglass.dreambooth.callbacks import logs_at

Report = Callable[[str, dict[str, Any]], None]
LOSS_KEYS = {
    "train/loss": "loss",
    "train/loss_instance": "loss_instance",
    "train/loss_prior": "loss_prior",
    "train/lr": "lr",
}


class FitWatcher(Callback):
    def __init__(
        self,
        report: Report,
        should_stop: Callable[[], bool] = lambda: False,
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        self.report = report
        self.should_stop = should_stop
        self.flush = flush
        self.stopped = False
        self._last_step = -1
        self._first_step = 0
        self._clock: tuple[int, float] | None = None
        self._samples_seen: set[str] = set()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_step = self._first_step = trainer.global_step
        self._clock = None
        self.stopped = False
        self.forget_samples_after(Path(trainer.default_root_dir), trainer.global_step)
        self.report("start", {"step": trainer.global_step, "max_steps": trainer.max_steps})

    def steps_per_sec(self, step: int) -> float | None:
        now = time.perf_counter()
        if self._clock is None or step <= self._first_step + 1:  # the first step carries the warm-up
            self._clock = (step, now)
            return None
        first, since = self._clock
        return (step - first) / max(now - since, 1e-9) if step > first else None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._last_step:  # mid-accumulation
            return
        self._last_step = step
        speed = self.steps_per_sec(step)
        if logs_at(trainer, step):
            data: dict[str, Any] = {"step": step, "max_steps": trainer.max_steps}
            for key, name in LOSS_KEYS.items():
                value = trainer.callback_metrics.get(key)
                if value is not None:
                    data[name] = float(value)
            if speed:
                data["steps_per_sec"] = round(speed, 4)
                data["eta_s"] = round(max(0, trainer.max_steps - step) / speed, 1)
            self.report("step", data)
        self.report_samples(trainer)
        if self.should_stop():
            self.stopped = True
            trainer.should_stop = True
            self.report("stopped", {"step": step})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.report_samples(trainer)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.report("checkpoint", {"step": trainer.global_step})
        self.flush()

    def forget_samples_after(self, root: Path, step: int) -> None:
        """Samples of steps up to ``step`` count as reported; later ones (drawn by an attempt that
        died before its next checkpoint) are removed, since those steps run and draw again."""
        for step_dir in sorted((root / "samples").glob("step_*")):
            if int(step_dir.name.split("_")[-1]) > step:
                shutil.rmtree(step_dir, ignore_errors=True)
            else:
                self._samples_seen.add(step_dir.name)

    def report_samples(self, trainer: pl.Trainer) -> None:
        for folder, paths in new_samples(Path(trainer.default_root_dir), self._samples_seen):
            self.report("samples", {"step": int(folder.split("_")[-1]), "files": paths})


def new_samples(root: Path, seen: set[str]) -> list[tuple[str, list[str]]]:
    """Sample folders (``samples/step_NNNNNN``) under ``root`` not in ``seen`` (which is updated)."""
    out = []
    folder = root / "samples"
    if not folder.is_dir():
        return out
    for step_dir in sorted(folder.glob("step_*")):
        if step_dir.name in seen or not step_dir.is_dir():
            continue
        pngs = sorted(str(p) for p in step_dir.glob("*.png"))
        if pngs:
            seen.add(step_dir.name)
            out.append((step_dir.name, pngs))
    return out
