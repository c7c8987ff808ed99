"""Fidelity tracking during a DreamBooth run, and the choice of the best step.

:class:`FidelityTracker` is a Lightning callback. Before the first optimizer step (the base model) and
every ``every_n_steps`` steps after it, and once more when training ends, it draws held-out prompts
from fixed seeds with the weights being trained (the EMA weights when the run keeps them), scores the
images, and logs the scores to every logger of the trainer (TensorBoard, W&B, CSV) as
``fidelity/<metric>``, with ``fidelity/best_step``. The history is kept in ``fidelity.json`` in
``trainer.default_root_dir``. The judges are the paper's (:mod:`groundglass.dreambooth.judges`):

- ``fidelity/clip_i``: CLIP image similarity of the generated images to the instance images;
- ``fidelity/clip_t``: CLIP similarity of each generated image to its prompt (identifier removed);
- ``fidelity/dino``: DINO CLS similarity of the generated images to the instance images.

CLIP-I and CLIP-T need ``clip_model``, DINO needs ``dino_model``: a Hugging Face model id or a local
folder, loaded like any other model (safetensors only).

**The best step** is the evaluated step after step 0 with the highest ``select`` metric among those
whose ``guard`` metric is at least the base model's (step 0) minus ``tolerance``. By default ``select``
is ``dino`` (``clip_i`` without a DINO model) and ``guard`` is ``clip_t`` (no guard without a CLIP
model; ``guard: none`` turns it off). Subject fidelity keeps rising while a run overfits, and prompt
fidelity falls once the model can only redraw the instance photos; the tolerance says how much of the
base model's obedience to prompts may be traded for likeness. When a step becomes the best, the run's
checkpoint is written to ``<checkpoints>/best.ckpt`` (loadable like ``last.ckpt``).

In a fit config::

    trainer:
      callbacks:
        - class_path: groundglass.dreambooth.fidelity.FidelityTracker
          init_args:
            every_n_steps: 100
            prompts: [a photo of sks dog on the beach, a photo of a red sks dog]
            clip_model: openai/clip-vit-base-patch32
            dino_model: facebook/dino-vits16

With several processes (DDP) every process measures: the weights and seeds are the same everywhere, so
is the choice, and writing ``best.ckpt`` is a call all processes make together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from groundglass.errors import GroundglassError

JUDGE_METRICS = ("clip_i", "clip_t", "dino")


class FidelityTracker(Callback):
    """Measure CLIP-I, CLIP-T and DINO while training; keep the best step.

    Args:
        every_n_steps: evaluate every this many optimizer steps (besides before the first and at the end;
            0: only those two).
        prompts: held-out prompts with the identifier (default: the data's instance prompt).
        seeds: one image per prompt and seed.
        clip_model: CLIP for CLIP-I and CLIP-T: a Hugging Face id (openai/clip-vit-base-patch32) or a folder.
        dino_model: DINO ViT for DINO: a Hugging Face id (facebook/dino-vits16) or a folder.
        select: the metric whose highest value picks the best step (default: dino, else clip_i).
        guard: the metric that may fall at most ``tolerance`` below the base model's (default: clip_t
            when CLIP is given; ``none``: no guard).
        tolerance: how far ``guard`` may fall below its step-0 value for a step to count.
        local_files_only: load the judge models only from folders or the Hugging Face cache.
        steps: denoising steps per image.
        guidance_scale: classifier-free guidance scale.
        scheduler: sampler: ddim, dpm++ or euler.
        batch_size: images drawn per batch.
        use_ema: draw with the EMA weights when the run keeps them.
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        prompts: list[str] | None = None,
        seeds: list[int] | None = None,
        clip_model: str | None = None,
        dino_model: str | None = None,
        select: str | None = None,
        guard: str | None = None,
        tolerance: float = 0.1,
        local_files_only: bool = False,
        steps: int = 25,
        guidance_scale: float = 7.5,
        scheduler: str = "ddim",
        batch_size: int = 8,
        use_ema: bool = True,
    ) -> None:
        from groundglass.dreambooth.judges import check_source

        name = type(self).__name__
        if every_n_steps < 0:
            raise GroundglassError(
                f"{name} every_n_steps must be 0 or more (got {every_n_steps})",
                "set init_args.every_n_steps to e.g. 100",
            )
        if tolerance < 0:
            raise GroundglassError(
                f"{name} tolerance must be 0 or more (got {tolerance})", "set init_args.tolerance to e.g. 0.1"
            )
        self.every_n_steps = every_n_steps
        self.prompts = list(prompts) if prompts else None
        self.seeds = list(seeds) if seeds else [0, 1, 2, 3]
        self.clip_model = clip_model
        self.dino_model = dino_model
        self.tolerance = tolerance
        self.local_files_only = local_files_only
        self.sampling = {"steps": steps, "guidance_scale": guidance_scale, "scheduler": scheduler}
        self.batch_size = batch_size
        self.use_ema = use_ema
        for option, source, example in (
            ("clip_model", clip_model, "openai/clip-vit-base-patch32"),
            ("dino_model", dino_model, "facebook/dino-vits16"),
        ):
            if source is not None:
                check_source(source, self.option(option), example)
        self._choose_metrics(select, guard)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self._clip: Any = None
        self._dino: Any = None
        self._instances: list[Any] | None = None

    def _choose_metrics(self, select: str | None, guard: str | None) -> None:
        """Set ``select`` and ``guard`` (defaults where None), refusing a metric this run cannot measure."""
        name = type(self).__name__
        available = self.available_metrics()
        if not available:
            raise GroundglassError(
                f"{name} has nothing to measure: no clip_model and no dino_model",
                "set init_args.clip_model (e.g. openai/clip-vit-base-patch32) and/or init_args.dino_model "
                "(e.g. facebook/dino-vits16)",
            )
        self.select = select or self.default_select()
        guard = guard if guard is not None else self.default_guard()
        self.guard = None if guard in (None, "", "none") else guard
        for option, metric in (("select", self.select), ("guard", self.guard)):
            if metric is not None and metric not in available:
                raise GroundglassError(
                    f"{name} {option}={metric!r} is not measured in this run "
                    f"(measured: {', '.join(available)})",
                    f"set init_args.{option} to one of {', '.join(available)}, or give the model it needs "
                    "(clip_model for clip_i/clip_t, dino_model for dino)",
                )

    # -- what is measured ------------------------------------------------------------------------

    def option(self, key: str) -> str:
        """How a setting is named in errors: the callback's init_args key."""
        return f"{type(self).__name__} init_args.{key}"

    def available_metrics(self) -> list[str]:
        """The metrics this tracker measures, each higher-is-better."""
        return [*(["clip_i", "clip_t"] if self.clip_model else []), *(["dino"] if self.dino_model else [])]

    def default_select(self) -> str:
        return "dino" if self.dino_model else "clip_i"

    def default_guard(self) -> str | None:
        return "clip_t" if self.clip_model else None

    @property
    def criterion(self) -> str:
        if self.guard is None:
            return f"highest {self.select}"
        return (
            f"highest {self.select} among steps with {self.guard} >= base model's {self.guard} "
            f"- {self.tolerance}"
        )

    def judge(
        self, images_by_prompt: dict[str, Sequence[Any]], instances: Sequence[Any], identifier: str
    ) -> dict[str, float]:
        """CLIP-I, CLIP-T and DINO of the images drawn for each prompt, as far as judges are loaded."""
        from groundglass.dreambooth import judges

        flat = [im for images in images_by_prompt.values() for im in images]
        flat_prompts = [p for p, images in images_by_prompt.items() for _ in images]
        scores: dict[str, float] = {}
        if self._clip is not None:
            scores["clip_i"] = judges.clip_i(self._clip, flat, instances)
            scores["clip_t"] = judges.clip_t(self._clip, flat, flat_prompts, identifier=identifier)
        if self._dino is not None:
            scores["dino"] = judges.dino(self._dino, flat, instances)
        return scores

    def instance_images(self, trainer: pl.Trainer) -> list[Any]:
        """The subject's photos, from the data module's ``instance_data_dir`` (read once)."""
        if self._instances is None:
            from PIL import Image, ImageOps

            from groundglass.dreambooth.data import scan_images

            paths = scan_images(
                trainer.datamodule.instance_data_dir, setting="data.instance_data_dir", min_size=1
            )
            self._instances = []
            for path in paths:
                with Image.open(path) as im:
                    self._instances.append(ImageOps.exif_transpose(im).convert("RGB"))
        return self._instances

    def score(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, float]:
        """Draw the prompts with the current weights and judge the images."""
        from groundglass.dreambooth.sample import generate

        datamodule = trainer.datamodule
        prompts = self.prompts or [datamodule.instance_prompt]
        size = getattr(datamodule, "resolution", None)
        all_prompts = [p for p in prompts for _ in self.seeds]
        images = generate(
            pl_module.components(),
            all_prompts,
            seeds=[s for _ in prompts for s in self.seeds],
            height=size,
            width=size,
            batch_size=self.batch_size,
            **self.sampling,
        )
        n = len(self.seeds)
        by_prompt = {p: images[i * n : (i + 1) * n] for i, p in enumerate(prompts)}
        return self.judge(by_prompt, self.instance_images(trainer), getattr(datamodule, "identifier", ""))

    # -- when ------------------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        from groundglass.dreambooth.judges import ClipJudge, DinoJudge

        device = trainer.strategy.root_device
        if self.clip_model and self._clip is None:
            self._clip = ClipJudge.load(
                self.clip_model,
                option=self.option("clip_model"),
                local_files_only=self.local_files_only,
                device=device,
            )
        if self.dino_model and self._dino is None:
            self._dino = DinoJudge.load(
                self.dino_model,
                option=self.option("dino_model"),
                local_files_only=self.local_files_only,
                device=device,
            )

    def _measure(self, trainer: pl.Trainer, pl_module: Any) -> None:
        from groundglass.dreambooth.callbacks import weights_for_sampling

        step = trainer.global_step
        if self.history and self.history[-1]["step"] == step:
            return
        with weights_for_sampling(pl_module, use_ema=self.use_ema):
            scores = self.score(trainer, pl_module)
        entry = {"step": step, **scores}
        self.history.append(entry)
        base = self.history[0]
        eligible = self.guard is None or scores[self.guard] >= base[self.guard] - self.tolerance
        if step > 0 and eligible and (self.best is None or scores[self.select] > self.best[self.select]):
            self.best = entry
            if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.dirpath:
                trainer.save_checkpoint(
                    str(Path(trainer.checkpoint_callback.dirpath) / "best.ckpt"), weights_only=False
                )
        logged = {f"fidelity/{k}": float(v) for k, v in scores.items()}
        if self.best is not None:
            logged["fidelity/best_step"] = float(self.best["step"])
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=step)
        self._write(trainer)

    def _write(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero:
            return
        root = Path(trainer.default_root_dir)
        root.mkdir(parents=True, exist_ok=True)
        record = {
            "criterion": self.criterion,
            "select": self.select,
            "guard": self.guard,
            "tolerance": self.tolerance,
            "best_step": self.best["step"] if self.best else None,
            "history": self.history,
        }
        (root / "fidelity.json").write_text(json.dumps(record, indent=1), encoding="utf-8")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0:
            self._measure(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.every_n_steps and trainer.global_step and trainer.global_step % self.every_n_steps == 0:
            self._measure(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._measure(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.best = state_dict.get("best")
