"""The DreamBooth data: instance and class images, their prompts, and the stream training reads.

``DreamBoothDataModule`` checks the prompts and the image folders (:mod:`~groundglass.dreambooth.images`),
generates missing class images with the base model (:mod:`~groundglass.dreambooth.priors`), loads the
images at the training resolution and serves them as an endless, seeded stream of micro-batches
(:mod:`~groundglass.dreambooth.stream`). It also tells the model which image sets a latent cache can
serve (each image has one fixed crop: with ``center_crop``, or an image already square at the
training resolution) and hands the cached latents to the stream (see
:mod:`groundglass.dreambooth.cache`).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from groundglass.dreambooth.hparams import init_arguments
from groundglass.dreambooth.images import count_images, load_image, original_size, scan_images
from groundglass.dreambooth.stream import (
    DreamBoothStream,
    ImageSet,
    augment,
    cache_views,
    has_fixed_crops,
)
from groundglass.errors import GroundglassError

# The stream's and the image files' names that tests and callers read from here, where they lived first.
__all__ = [
    "ClassImageGeneration",
    "DreamBoothDataModule",
    "DreamBoothStream",
    "ImageSet",
    "augment",
    "cache_views",
    "check_prompts",
    "load_image",
    "scan_images",
]


@dataclass
class ClassImageGeneration:
    """How missing class images are generated with the base model before training.

    Args:
        batch_size: images per sampling batch.
        steps: denoising steps per image.
        guidance_scale: classifier-free guidance scale.
        scheduler: sampler: ddim, dpm++ or euler.
        negative_prompt: optional negative prompt.
        device: where to generate (default: cuda when available, else cpu).
    """

    batch_size: int = 4
    steps: int = 30
    guidance_scale: float = 7.5
    scheduler: str = "ddim"
    negative_prompt: str | None = None
    device: str | None = None


def lacks_identifier(prompt: str, identifier: str) -> bool:
    """True when ``identifier`` does not appear as a word in ``prompt``."""
    return re.search(rf"(?<![\w]){re.escape(identifier)}(?![\w])", prompt, flags=re.IGNORECASE) is None


def check_prompts(
    instance_prompt: str, identifier: str, class_prompt: str | None, tokenizer: Any | None
) -> None:
    """Error when the instance prompt lacks the identifier; warn when it is not one token or leaks."""
    if not identifier.strip():
        raise GroundglassError("data.identifier is empty", "set data.identifier to a rare token such as sks")
    if lacks_identifier(instance_prompt, identifier):
        raise GroundglassError(
            f"data.instance_prompt {instance_prompt!r} does not contain the identifier {identifier!r}",
            f"write the prompt with the identifier, e.g. 'a photo of {identifier} dog', "
            "or set data.identifier to the token your prompt uses",
        )
    if class_prompt is not None and not lacks_identifier(class_prompt, identifier):
        warnings.warn(
            f"data.class_prompt {class_prompt!r} contains the identifier {identifier!r}: the class "
            "prompt should describe the class only (e.g. 'a photo of a dog')",
            stacklevel=2,
        )
    if tokenizer is not None:
        pieces = tokenizer.tokenize(identifier)
        if len(pieces) != 1:
            warnings.warn(
                f"the identifier {identifier!r} is {len(pieces)} tokens for this tokenizer ({pieces}); "
                "a rare single token (such as 'sks' for CLIP) binds the subject better",
                stacklevel=2,
            )


def read_captions(paths: list[Path]) -> list[tuple[str, ...]]:
    """Each image's captions: the non-empty lines of the ``.txt`` file beside it (none: no file)."""
    captions = []
    for path in paths:
        text_file = path.with_suffix(".txt")
        lines = text_file.read_text(encoding="utf-8").splitlines() if text_file.is_file() else []
        captions.append(tuple(line.strip() for line in lines if line.strip()))
    return captions


def check_captions(captions: list[tuple[str, ...]], identifier: str) -> None:
    """Error naming every caption that lacks the identifier (a photo trained without it is lost)."""
    bad = sorted({c for options in captions for c in options if lacks_identifier(c, identifier)})
    if bad:
        raise GroundglassError(
            f"{len(bad)} caption(s) of data.instance_captions do not contain the identifier "
            f"{identifier!r}: " + "; ".join(repr(c) for c in bad[:10]),
            f"write {identifier!r} into every line of the photos' .txt files",
        )


class DreamBoothDataModule(pl.LightningDataModule):
    """Instance photos of the subject, class images for prior preservation, and their prompts.

    Args:
        instance_data_dir: folder with 3-5 (or more) photos of the subject.
        instance_prompt: prompt for the photos; must contain ``identifier``, e.g. "a photo of sks dog".
        instance_captions: read each photo's own captions from the text file beside it, with the
            photo's name and ``.txt`` (``dog-1.png``: ``dog-1.txt``), one caption per line; each
            example of the photo takes one of its lines at random (seeded, as crops are). Every caption
            must contain ``identifier``. A photo with no such file uses ``instance_prompt``. Captions
            that name what varies between the photos and is not the subject ("a photo of sks dog on
            the grass") keep the identifier from learning it.
        identifier: the rare token that names the subject.
        class_prompt: prompt describing the class, e.g. "a photo of a dog" (prior preservation).
        class_data_dir: folder of class images; missing ones are generated with the base model.
        with_prior_preservation: train on class images too (loss = instance + prior_loss_weight * class).
        num_class_images: how many class images prior preservation uses (generated when fewer exist).
        class_image_generation: settings for generating missing class images.
        resolution: training image size in pixels (square).
        center_crop: centre crop instead of random crop.
        random_flip: random horizontal flip.
        batch_size: instance images per device and micro-batch (as many class images join them).
        num_workers: DataLoader worker processes.
        min_image_size: smallest allowed short side in pixels; default: half the resolution.
        base_model: linked from model.base_model (used to generate class images).
        revision: linked from model.revision.
        vae: linked from model.vae (the VAE that draws the class images too).
        local_files_only: linked from model.local_files_only.
        seed: linked from model.seed.
    """

    def __init__(
        self,
        instance_data_dir: str,
        instance_prompt: str,
        identifier: str = "sks",
        instance_captions: bool = False,
        class_prompt: str | None = None,
        class_data_dir: str | None = None,
        with_prior_preservation: bool = True,
        num_class_images: int = 100,
        class_image_generation: ClassImageGeneration | None = None,
        resolution: int = 512,
        center_crop: bool = False,
        random_flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 0,
        min_image_size: int | None = None,
        base_model: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        seed: int = 0,
        vae: str | None = None,
    ) -> None:
        arguments = init_arguments(locals())
        super().__init__()
        self.save_hyperparameters(arguments)
        self.instance_data_dir = instance_data_dir
        self.instance_prompt = instance_prompt
        self.identifier = identifier
        self.instance_captions = instance_captions
        self.class_prompt = class_prompt
        self.class_data_dir = class_data_dir
        self.with_prior_preservation = with_prior_preservation
        self.num_class_images = num_class_images
        self.class_image_generation = class_image_generation or ClassImageGeneration()
        self.resolution = resolution
        self.center_crop = center_crop
        self.random_flip = random_flip
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.min_image_size = min_image_size if min_image_size is not None else max(1, resolution // 2)
        self.base_model = base_model
        self.revision = revision
        self.vae = vae
        self.local_files_only = local_files_only
        self.seed = seed
        self.instances: ImageSet | None = None
        self.classes: ImageSet | None = None
        self.latent_cache: dict[str, torch.Tensor] = {}
        self._checked = False
        self._check_settings()

    # -- validation -----------------------------------------------------------------------------

    def _check_settings(self) -> None:
        if self.resolution < 8 or self.resolution % 8:
            raise GroundglassError(
                f"data.resolution must be a positive multiple of 8 (got {self.resolution})",
                "use e.g. 512 for SD 1.x, 768 for SD 2.x-v or 1024 for SDXL",
            )
        if self.batch_size < 1:
            raise GroundglassError(
                f"data.batch_size must be at least 1 (got {self.batch_size})", "set it to 1 or more"
            )
        if self.with_prior_preservation:
            missing = [k for k in ("class_prompt", "class_data_dir") if not getattr(self, k)]
            if missing:
                raise GroundglassError(
                    "prior preservation needs " + " and ".join(f"data.{k}" for k in missing),
                    "set them (e.g. class_prompt: 'a photo of a dog', class_data_dir: runs/dog/class_images) "
                    "or set data.with_prior_preservation: false",
                )
            if self.num_class_images < 1:
                raise GroundglassError("data.num_class_images must be at least 1", "set it, e.g. to 100")

    def _tokenizer(self) -> Any | None:
        trainer = self.trainer
        module = trainer.lightning_module if trainer is not None else None
        return getattr(module, "tokenizer", None)

    def check(self) -> list[Path]:
        """Check prompts and instance images; return the instance image paths."""
        check_prompts(
            self.instance_prompt,
            self.identifier,
            self.class_prompt if self.with_prior_preservation else None,
            self._tokenizer(),
        )
        paths = scan_images(
            self.instance_data_dir, setting="data.instance_data_dir", min_size=self.min_image_size
        )
        if self.instance_captions:
            check_captions(read_captions(paths), self.identifier)
        return paths

    def fingerprint_fields(self) -> dict[str, Any]:
        """What defines the run on the data side (compared when resuming)."""
        fields: dict[str, Any] = {
            "instance_prompt": self.instance_prompt,
            "class_prompt": self.class_prompt,
            "with_prior_preservation": self.with_prior_preservation,
            "resolution": self.resolution,
        }
        if self.instance_captions:  # only then: runs without captions resume as they did before
            fields["instance_captions"] = [list(c) for c in self.image_sets()["instance"].captions]
        return fields

    # -- Lightning hooks --------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Once per node: validate the data and generate missing class images."""
        self.check()
        if self.with_prior_preservation:
            assert self.class_data_dir is not None and self.class_prompt is not None
            if count_images(self.class_data_dir) < self.num_class_images:
                self.generate_class_images()
            scan_images(self.class_data_dir, setting="data.class_data_dir", min_size=self.min_image_size)

    def generate_class_images(self) -> None:
        """Fill ``class_data_dir`` up to ``num_class_images`` with images from the base model."""
        if self.base_model is None:
            raise GroundglassError(
                "class images must be generated but no base model is known",
                "set model.base_model, or fill data.class_data_dir with class images",
            )
        from groundglass.dreambooth.priors import ensure_class_images

        gen = self.class_image_generation
        assert self.class_prompt is not None and self.class_data_dir is not None
        ensure_class_images(
            self.base_model,
            self.class_prompt,
            Path(self.class_data_dir).expanduser(),
            self.num_class_images,
            local_files_only=self.local_files_only,
            batch_size=gen.batch_size,
            seed=self.seed,
            resolution=self.resolution,
            steps=gen.steps,
            guidance_scale=gen.guidance_scale,
            scheduler=gen.scheduler,
            negative_prompt=gen.negative_prompt,
            device=gen.device,
            vae=self.vae,
        )

    def setup(self, stage: str) -> None:
        if self.instances is not None:
            return
        paths = self.check()
        images = [load_image(p, self.resolution) for p in paths]
        self.instances = ImageSet(
            images,
            self.instance_prompt,
            paths,
            [original_size(p) for p in paths],
            captions=read_captions(paths) if self.instance_captions else [],
        )
        if self.with_prior_preservation:
            assert self.class_data_dir is not None and self.class_prompt is not None
            class_paths = scan_images(
                self.class_data_dir, setting="data.class_data_dir", min_size=self.min_image_size
            )
            if len(class_paths) < self.num_class_images:
                raise GroundglassError(
                    f"data.class_data_dir {self.class_data_dir} has {len(class_paths)} images, "
                    f"data.num_class_images asks for {self.num_class_images}",
                    "run `groundglass dreambooth priors` or let fit generate them (it does so on its own)",
                )
            class_paths = class_paths[: self.num_class_images]
            self.classes = ImageSet(
                [load_image(p, self.resolution) for p in class_paths],
                self.class_prompt,
                class_paths,
                [original_size(p) for p in class_paths],
            )

    # -- latent cache ---------------------------------------------------------------------------

    def image_sets(self) -> dict[str, ImageSet]:
        """The loaded image sets by kind (``instance``, and ``class`` with prior preservation)."""
        if self.instances is None:
            self.setup("fit")
        assert self.instances is not None
        sets = {"instance": self.instances}
        if self.classes is not None:
            sets["class"] = self.classes
        return sets

    def prompts(self) -> list[str]:
        """The prompts training uses (what a text-embedding cache needs)."""
        return [p for s in self.image_sets().values() for p in s.all_prompts()]

    def cacheable_kinds(self) -> list[str]:
        """The image sets whose examples a latent cache can serve (each image has one fixed crop)."""
        return [
            kind
            for kind, image_set in self.image_sets().items()
            if has_fixed_crops(image_set.images, self.resolution, center_crop=self.center_crop)
        ]

    def cache_views(self, kind: str) -> torch.Tensor:
        """Pixels to encode for ``kind``'s cache: ``(n_images, flips, 3, H, W)``."""
        return cache_views(self.image_sets()[kind].images, self.resolution, random_flip=self.random_flip)

    def set_latent_cache(self, cache: dict[str, torch.Tensor]) -> None:
        """Serve these cached latents (kind -> ``(n_images, flips, 2, C, h, w)``) instead of pixels."""
        bad = sorted(set(cache) - set(self.cacheable_kinds()))
        if bad:
            raise ValueError(f"latents of {bad} cannot be cached: their crops are random")
        self.latent_cache = dict(cache)

    def stream(self, start: int = 0, rank: int = 0, world_size: int = 1) -> DreamBoothStream:
        if self.instances is None:
            self.setup("fit")
        assert self.instances is not None
        return DreamBoothStream(
            self.instances,
            self.classes,
            resolution=self.resolution,
            batch_size=self.batch_size,
            seed=self.seed,
            center_crop=self.center_crop,
            random_flip=self.random_flip,
            rank=rank,
            world_size=world_size,
            start=start,
            latents=self.latent_cache,
        )

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        # Called by the fit loop after a checkpoint's loop state was restored: start where it stopped.
        start = trainer.global_step * trainer.accumulate_grad_batches
        stream = self.stream(start=start, rank=trainer.global_rank, world_size=trainer.world_size)
        return DataLoader(
            stream, batch_size=None, num_workers=self.num_workers, persistent_workers=self.num_workers > 0
        )
