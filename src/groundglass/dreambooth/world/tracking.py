"""Fidelity tracking during a DreamBooth run, and the choice of the best step.

``FidelityTracker`` is a Lightning callback. Before the first step and every ``every_n_steps`` optimizer
steps it draws the world's evaluation prompts from fixed seeds with the weights being trained, scores
them with :func:`groundglass.dreambooth.world.personalise.evaluate` (subject fidelity, prompt
fidelity, PRES, DIV) and logs the scores to every logger of the trainer (TensorBoard, W&B, CSV) under
``fidelity/``. It keeps the history in ``fidelity.json`` in the run folder.

The best step, by this criterion: **the highest subject fidelity among the evaluated steps whose prompt
fidelity is at least the base model's minus ``tolerance``** (the step-0 evaluation is the base model).
Subject fidelity keeps rising as a run overfits, while prompt fidelity falls when the model can only
draw the instance images again; the tolerance says how much of the base model's obedience to prompts
may be traded for likeness. When a step becomes the best, a checkpoint is written to
``<checkpoints>/best.ckpt`` (loadable with :func:`groundglass.dreambooth.module.load_trained`).

Fidelity here is judged by the world's own measurement model, so the callback is for the toy world.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class FidelityTracker(Callback):
    """Measure the world's DreamBooth metrics while training; keep the best step.

    Args:
        every_n_steps: evaluate every this many optimizer steps (and before the first).
        tolerance: how far prompt fidelity may fall below the base model's for a step to count.
        seeds: the seeds of the images drawn per prompt.
    """

    def __init__(self, every_n_steps: int = 50, tolerance: float = 0.1,
                 seeds: list[int] | None = None) -> None:
        self.every_n_steps = every_n_steps
        self.tolerance = tolerance
        self.seeds = seeds or [100, 101, 102, 103]
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None

    def _measure(self, trainer: pl.Trainer, pl_module: Any) -> None:
        from groundglass.dreambooth.world.personalise import evaluate

        step = trainer.global_step
        if self.history and self.history[-1]["step"] == step:
            return
        scores, _ = evaluate(pl_module.components(), seeds=self.seeds, class_seeds=self.seeds * 2)
        entry = {"step": step, **scores}
        self.history.append(entry)
        for logger in trainer.loggers:
            logger.log_metrics({f"fidelity/{k}": v for k, v in scores.items()}, step=step)
        floor = self.history[0]["prompt_fidelity"] - self.tolerance
        if step > 0 and scores["prompt_fidelity"] >= floor and (
                self.best is None or scores["subject_fidelity"] > self.best["subject_fidelity"]):
            self.best = entry
            if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.dirpath:
                trainer.save_checkpoint(str(Path(trainer.checkpoint_callback.dirpath) / "best.ckpt"),
                                        weights_only=False)
        self._write(trainer)

    def _write(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero:
            return
        root = Path(trainer.default_root_dir)
        root.mkdir(parents=True, exist_ok=True)
        record = {"criterion": f"max subject fidelity with prompt fidelity >= base - {self.tolerance}",
                  "best_step": self.best["step"] if self.best else None, "history": self.history}
        (root / "fidelity.json").write_text(json.dumps(record, indent=1), encoding="utf-8")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0:
            self._measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._measure(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._measure(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.best = state_dict.get("best")
