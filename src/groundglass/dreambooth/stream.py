"""The training stream: endless micro-batches, each a pure function of the run seed and its position.

Micro-batch ``m`` of rank ``r`` holds the examples at stream positions
``(m * world_size + r) * batch_size + j``; the image at a position, its crop, its flip and the seed
of its noise are pure functions of the run seed and the position (see
:mod:`groundglass.dreambooth.seeding`). A resumed run starts the stream at
``global_step * accumulate_grad_batches`` and so sees exactly the batches the straight run saw, and
a 2-process DDP run sees exactly what one process with twice the batch size sees.

The stream can also serve cached VAE latents instead of pixels (``{kind}_latents``: the mean and
standard deviation of each example's latent distribution, shape ``(B, 2, C, h, w)``). A cache holds
one entry per image and flip state, so it is only valid where an image's crop is fixed
(:func:`has_fixed_crops`). The stream draws the same random numbers either way, so a cached run sees
exactly the examples an uncached run sees.

Crop and flip are written by hand on tensors because torchvision cannot be installed beside this
torch build (see docs); they are a few lines each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from groundglass.dreambooth.seeding import derive_seed, generator
from groundglass.errors import GroundglassError


@dataclass
class ImageSet:
    """Pre-resized images (uint8, 3xHxW, short side = resolution) and their prompt.

    ``sizes`` are the images' (height, width) before resizing, which SDXL is conditioned on; where
    absent, an image's own size stands in. ``captions`` are, per image, the prompts it is trained
    with (an example takes one of them); where absent, or empty for an image, ``prompt`` stands in.
    """

    images: list[torch.Tensor]
    prompt: str
    paths: list[Path] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    captions: list[tuple[str, ...]] = field(default_factory=list)

    def original_size(self, index: int) -> tuple[int, int]:
        if self.sizes:
            return self.sizes[index]
        _, height, width = self.images[index].shape
        return height, width

    def caption(self, index: int, gen: torch.Generator) -> str:
        """The prompt of an example of image ``index``: one of its captions, drawn with ``gen``."""
        options = self.captions[index] if self.captions else ()
        if len(options) <= 1:
            return options[0] if options else self.prompt
        return options[int(torch.randint(0, len(options), (1,), generator=gen))]

    def all_prompts(self) -> list[str]:
        """Every prompt an example of this set can have, each once."""
        if not self.captions:
            return [self.prompt]
        return list(dict.fromkeys(c for options in self.captions for c in (options or (self.prompt,))))


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
            out[f"{kind}_prompts"] = [
                image_set.caption(d[2], generator(self.seed, kind, "caption", p))
                for d, p in zip(drawn, self.positions(m), strict=True)
            ]
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
