"""Instance and class images, prompts, augmentation, and the training stream.

The training data is an endless stream of micro-batches (``DreamBoothStream``). Micro-batch ``m``
of rank ``r`` holds the examples at stream positions ``(m * world_size + r) * batch_size + j``;
the image at a position, its crop, its flip and the seed of its noise are pure functions of the run
seed and the position (see :mod:`groundglass.dreambooth.seeding`). A resumed run starts the stream
at ``global_step * accumulate_grad_batches`` and so sees exactly the batches the straight run saw,
and a 2-process DDP run sees exactly what one process with twice the batch size sees.

The stream can also serve cached VAE latents instead of pixels (``{kind}_latents``: the mean and
standard deviation of each example's latent distribution, shape ``(B, 2, C, h, w)``). A cache holds one
entry per image and flip state, so it is only valid where an image's crop is fixed: with
``center_crop``, or for an image already square at the training resolution (random crops of it are
all the same crop). :meth:`DreamBoothDataModule.cacheable_kinds` says which image sets qualify; the
model encodes them once (see :mod:`groundglass.dreambooth.cache`). The stream draws the same random
numbers either way, so a cached run sees exactly the examples an uncached run sees.

Crop and flip are written by hand on tensors because torchvision cannot be installed beside this
torch build (see docs); they are a few lines each.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from groundglass.dreambooth.hparams import init_arguments
from groundglass.dreambooth.seeding import derive_seed, generator
from groundglass.errors import GroundglassError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")  # the set priors.py counts too
# Files that may sit beside images (prompts and seeds of generated class images, captions, notes).
SIDECAR_SUFFIXES = (".json", ".jsonl", ".txt", ".csv", ".yaml", ".yml", ".md", ".toml")
MAX_LISTED = 50


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


@dataclass
class ImageSet:
    """Pre-resized images (uint8, 3xHxW, short side = resolution) and their prompt.

    ``sizes`` are the images' (height, width) before resizing, which SDXL is conditioned on; where
    absent, an image's own size stands in.
    """

    images: list[torch.Tensor]
    prompt: str
    paths: list[Path] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def original_size(self, index: int) -> tuple[int, int]:
        if self.sizes:
            return self.sizes[index]
        _, height, width = self.images[index].shape
        return height, width


def _describe(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def scan_images(folder: str | Path, *, setting: str, min_size: int) -> list[Path]:
    """Every image file in ``folder``, checked; one GroundglassError lists all unusable files.

    A file is unusable when its format is unsupported, it cannot be decoded, or its short side is
    below ``min_size`` pixels. Hidden files, sub-folders and sidecar text files are skipped.
    ``setting`` names the config key the folder came from, for the error message.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder).expanduser()
    if not folder.exists():
        raise GroundglassError(
            f"{setting}: folder {folder} does not exist",
            f"create it and put your images in it, or fix {setting}",
        )
    if not folder.is_dir():
        raise GroundglassError(f"{setting}: {folder} is not a folder", f"set {setting} to a folder of images")
    images: list[Path] = []
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir() or path.suffix.lower() in SIDECAR_SUFFIXES:
            continue
        name = _describe(path, folder)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(
                f"{name}: unsupported format ({path.suffix or 'no extension'}); "
                f"use {', '.join(IMAGE_SUFFIXES[:4])}"
            )
            continue
        try:
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:
                im.load()  # verify() misses truncated data; decoding catches it
                width, height = im.size
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            Image.DecompressionBombError,
        ) as exc:
            problems.append(f"{name}: cannot be read ({str(exc).splitlines()[0] or type(exc).__name__})")
            continue
        if min(width, height) < min_size:
            problems.append(
                f"{name}: too small ({width}x{height} px; the short side needs at least {min_size} px)"
            )
            continue
        images.append(path)
    if problems:
        listed = problems[:MAX_LISTED]
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise GroundglassError(
            f"{setting}: {len(problems)} file(s) in {folder} cannot be used:\n  - "
            + "\n  - ".join(listed)
            + more
            + "\n",
            "remove, convert or replace these files (or lower data.min_image_size for small images)",
        )
    if not images:
        raise GroundglassError(
            f"{setting}: folder {folder} has no images",
            f"put {', '.join(IMAGE_SUFFIXES[:4])} images in it, or fix {setting}",
        )
    return images


def count_images(folder: str | Path) -> int:
    """How many image files (by extension) a folder holds; 0 when it does not exist."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return 0
    return sum(
        1
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def load_image(path: Path, resolution: int) -> torch.Tensor:
    """RGB uint8 tensor (3xHxW) with its short side resized to ``resolution`` (EXIF rotation applied)."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        width, height = im.size
        scale = resolution / min(width, height)
        size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
        if size != (width, height):
            im = im.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
        array = np.asarray(im, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def original_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file as shown (EXIF rotation applied), read from its header."""
    from PIL import Image

    with Image.open(path) as im:
        width, height = im.size
        if im.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn: sides swap
            width, height = height, width
    return height, width


def time_ids(
    size: tuple[int, int], image: torch.Tensor, resolution: int, top: int, left: int, flip: bool
) -> list[float]:
    """SDXL's size and crop conditioning of one example: original (height, width), the crop's top-left
    corner in the resized image as the UNet sees it (a flipped crop's left edge is measured in the
    flipped image, as diffusers' SDXL scripts, which flip before cropping, measure it), and the target
    (height, width)."""
    width = image.shape[-1]
    crop_left = width - left - resolution if flip else left
    return [
        float(size[0]),
        float(size[1]),
        float(top),
        float(crop_left),
        float(resolution),
        float(resolution),
    ]


def crop_and_flip(
    image: torch.Tensor, resolution: int, *, center_crop: bool, random_flip: bool, gen: torch.Generator
) -> tuple[int, int, bool]:
    """(top, left, flip) of an example's crop.

    Always draws the same three numbers from ``gen`` so the stream's randomness does not depend on
    the settings.
    """
    _, height, width = image.shape
    top_r = int(torch.randint(0, height - resolution + 1, (1,), generator=gen))
    left_r = int(torch.randint(0, width - resolution + 1, (1,), generator=gen))
    flip = bool(torch.rand(1, generator=gen) < 0.5)
    if center_crop:
        top, left = (height - resolution) // 2, (width - resolution) // 2
    else:
        top, left = top_r, left_r
    return top, left, random_flip and flip


def crop_pixels(image: torch.Tensor, resolution: int, top: int, left: int, flip: bool) -> torch.Tensor:
    """The crop at (top, left), flipped if asked; float in [-1, 1]."""
    out = image[:, top : top + resolution, left : left + resolution]
    if flip:
        out = out.flip(-1)
    return out.float().div(127.5).sub(1.0)


def augment(
    image: torch.Tensor, resolution: int, *, center_crop: bool, random_flip: bool, gen: torch.Generator
) -> torch.Tensor:
    """Crop to ``resolution`` squared (centre or random), maybe flip; float in [-1, 1]."""
    top, left, flip = crop_and_flip(
        image, resolution, center_crop=center_crop, random_flip=random_flip, gen=gen
    )
    return crop_pixels(image, resolution, top, left, flip)


def has_fixed_crops(images: list[torch.Tensor], resolution: int, *, center_crop: bool) -> bool:
    """True when each image has one possible crop (centre crop, or already square at the resolution)."""
    return center_crop or all(tuple(im.shape[-2:]) == (resolution, resolution) for im in images)


def cache_views(images: list[torch.Tensor], resolution: int, *, random_flip: bool) -> torch.Tensor:
    """The fixed crop of every image, then (with ``random_flip``) its mirror: ``(n, flips, 3, H, W)``."""
    views = []
    for image in images:
        _, height, width = image.shape
        top, left = (height - resolution) // 2, (width - resolution) // 2
        flips = (False, True) if random_flip else (False,)
        views.append(torch.stack([crop_pixels(image, resolution, top, left, f) for f in flips]))
    return torch.stack(views)


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


class DreamBoothStream(IterableDataset):
    """Endless micro-batches; micro-batch ``m`` is a pure function of (seed, m, rank)."""

    def __init__(
        self,
        instances: ImageSet,
        classes: ImageSet | None,
        *,
        resolution: int,
        batch_size: int,
        seed: int,
        center_crop: bool,
        random_flip: bool,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        latents: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise GroundglassError(
                f"data.batch_size must be at least 1 (got {batch_size})", "set it to 1 or more"
            )
        self.instances = instances
        self.classes = classes
        self.resolution = resolution
        self.batch_size = batch_size
        self.seed = seed
        self.center_crop = center_crop
        self.random_flip = random_flip
        self.rank = rank
        self.world_size = world_size
        self.start = start
        self.latents = dict(latents or {})  # kind -> (n_images, flips, 2, C, h, w): latent mean and std
        self._orders: dict[tuple[str, int], list[int]] = {}

    def positions(self, m: int) -> list[int]:
        first = (m * self.world_size + self.rank) * self.batch_size
        return list(range(first, first + self.batch_size))

    def _order(self, kind: str, epoch: int, n: int) -> list[int]:
        key = (kind, epoch)
        if key not in self._orders:
            if len(self._orders) > 8:
                self._orders.clear()
            gen = generator(self.seed, kind, "order", epoch)
            self._orders[key] = torch.randperm(n, generator=gen).tolist()
        return self._orders[key]

    def example(
        self, kind: str, image_set: ImageSet, position: int
    ) -> tuple[torch.Tensor, int, int, list[float]]:
        """(pixels, noise seed, image index, SDXL time ids) of the example at ``position`` of the
        ``kind`` stream.

        With a latent cache for ``kind``, the first item is the cached latent mean and std of the
        image in its flip state instead of the pixels.
        """
        images = image_set.images
        epoch, k = divmod(position, len(images))
        index = self._order(kind, epoch, len(images))[k]
        image = images[index]
        top, left, flip = crop_and_flip(
            image,
            self.resolution,
            center_crop=self.center_crop,
            random_flip=self.random_flip,
            gen=generator(self.seed, kind, "augment", position),
        )
        cached = self.latents.get(kind)
        if cached is not None:
            data = cached[index, int(flip)]
        else:
            data = crop_pixels(image, self.resolution, top, left, flip)
        ids = time_ids(image_set.original_size(index), image, self.resolution, top, left, flip)
        return data, derive_seed(self.seed, kind, "noise", position), index, ids

    def batch(self, m: int) -> dict[str, Any]:
        out: dict[str, Any] = {"step_index": m}
        for kind, image_set in (("instance", self.instances), ("class", self.classes)):
            if image_set is None:
                continue
            drawn = [self.example(kind, image_set, p) for p in self.positions(m)]
            field = "latents" if kind in self.latents else "pixels"
            out[f"{kind}_{field}"] = torch.stack([d[0] for d in drawn])
            out[f"{kind}_seeds"] = [d[1] for d in drawn]
            out[f"{kind}_indices"] = [d[2] for d in drawn]
            out[f"{kind}_prompts"] = [image_set.prompt] * len(drawn)
            out[f"{kind}_time_ids"] = torch.tensor([d[3] for d in drawn])
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        m, stride = self.start, 1
        if info is not None:  # DataLoader yields worker batches round-robin, so the order is kept
            m, stride = self.start + info.id, info.num_workers
        while True:
            yield self.batch(m)
            m += stride


class DreamBoothDataModule(pl.LightningDataModule):
    """Instance photos of the subject, class images for prior preservation, and their prompts.

    Args:
        instance_data_dir: folder with 3-5 (or more) photos of the subject.
        instance_prompt: prompt for the photos; must contain ``identifier``, e.g. "a photo of sks dog".
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
        return scan_images(
            self.instance_data_dir, setting="data.instance_data_dir", min_size=self.min_image_size
        )

    def fingerprint_fields(self) -> dict[str, Any]:
        """What defines the run on the data side (compared when resuming)."""
        return {
            "instance_prompt": self.instance_prompt,
            "class_prompt": self.class_prompt,
            "with_prior_preservation": self.with_prior_preservation,
            "resolution": self.resolution,
        }

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
        self.instances = ImageSet(images, self.instance_prompt, paths, [original_size(p) for p in paths])
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
        return [s.prompt for s in self.image_sets().values()]

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
