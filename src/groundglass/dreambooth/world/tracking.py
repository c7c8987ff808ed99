"""Fidelity tracking in the toy world: the world's own measurements, and CLIP/DINO where given.

``WorldFidelityTracker`` is :class:`groundglass.dreambooth.fidelity.FidelityTracker` with the world's
evaluation: before the first step and every ``every_n_steps`` optimizer steps it draws the world's
evaluation prompts from fixed seeds with the weights being trained, scores them with
:func:`groundglass.dreambooth.world.personalise.evaluate` (subject fidelity, prompt fidelity, PRES, DIV,
and prompt fidelity split into recontextualisation and property prompts) and, when ``clip_model`` /
``dino_model`` are set, with CLIP-I, CLIP-T and DINO on the same subject-prompt images. Everything is
logged under ``fidelity/`` and kept in ``fidelity.json`` in the run folder.

The best step, by default: **the highest subject fidelity among the evaluated steps whose prompt
fidelity is at least the base model's minus ``tolerance``** (the step-0 evaluation is the base model);
``select`` and ``guard`` may name any measured higher-is-better metric instead, e.g. ``select: dino,
guard: clip_t`` (the paper's judges). When a step becomes the best, a checkpoint is written to
``<checkpoints>/best.ckpt`` (loadable with :func:`groundglass.dreambooth.trained.load_trained`).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from groundglass.dreambooth.fidelity import FidelityTracker
from groundglass.dreambooth.world.generator import IDENTIFIER
from groundglass.dreambooth.world.personalise import SAMPLING
from groundglass.dreambooth.world.subject import PROPERTY_PROMPTS, RECONTEXT_PROMPTS, instance_images

# The world's scores that a best-step choice may use (PRES and class_identity are lower-is-better, so
# they cannot).
WORLD_METRICS = (
    "subject_fidelity",
    "prompt_fidelity",
    "prompt_fidelity_recontext",
    "prompt_fidelity_property",
    "div",
    "div_layout",
    "identity_plain",
    "identity_recontext",
    "identity_property",
    "background_followed",
    "colour_followed",
    "prior_shape_accuracy",
    "prior_colour_accuracy",
)


class WorldFidelityTracker(FidelityTracker):
    """Measure the world's DreamBooth metrics (and CLIP/DINO if given) while training; keep the best step.

    Args:
        every_n_steps: evaluate every this many optimizer steps (and before the first).
        tolerance: how far ``guard`` may fall below the base model's for a step to count.
        seeds: the seeds of the images drawn per prompt.
        clip_model: CLIP (Hugging Face id or folder) for CLIP-I and CLIP-T; None: not measured.
        dino_model: DINO ViT (Hugging Face id or folder) for DINO; None: not measured.
        select: the metric whose highest value picks the best step.
        guard: the metric that may fall at most ``tolerance`` below the base model's (``none``: no guard).
        local_files_only: load the judge models only from folders or the Hugging Face cache.
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        tolerance: float = 0.1,
        seeds: list[int] | None = None,
        clip_model: str | None = None,
        dino_model: str | None = None,
        select: str = "subject_fidelity",
        guard: str = "prompt_fidelity",
        local_files_only: bool = True,
    ) -> None:
        super().__init__(
            every_n_steps=every_n_steps,
            prompts=[*RECONTEXT_PROMPTS, *PROPERTY_PROMPTS],
            seeds=seeds or [100, 101, 102, 103],
            clip_model=clip_model,
            dino_model=dino_model,
            select=select,
            guard=guard,
            tolerance=tolerance,
            local_files_only=local_files_only,
            use_ema=True,
            **SAMPLING,
        )

    def available_metrics(self) -> list[str]:
        return [*WORLD_METRICS, *super().available_metrics()]

    def score(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, float]:
        from groundglass.dreambooth.world.personalise import evaluate

        assert self.prompts is not None
        scores, images = evaluate(pl_module.components(), seeds=self.seeds)  # class prompt: evaluate's seeds
        scores.update(self.judge({p: images[p] for p in self.prompts}, instance_images(), IDENTIFIER))
        return scores
