"""Images drawn with a base or fine-tuned model: ``POST /v1/images/generations`` without HTTP.

All ``n`` images of a request go through one batched classifier-free-guided pass
(:func:`groundglass.dreambooth.sample.generate`); image ``i`` is drawn from ``seed + i``, so a request
is reproducible. Each PNG carries its parameters as text chunks (prompt, seed, steps, guidance,
model: what ``groundglass dreambooth sample`` writes too). Loaded models are kept (the two most
recent); one request draws at a time per process.
"""

from __future__ import annotations

import io
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundglass.errors import GroundglassError

SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
MAX_SIDE = 2048
MAX_N = 10
KEEP_MODELS = 2
IMAGE_NAME = re.compile(r"^img-[A-Za-z0-9_-]{16,64}\.png$")


@dataclass
class Drawn:
    png: bytes
    seed: int


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    if size in (None, "", "auto"):
        return None, None
    match = SIZE.match(size)
    if not match:
        raise GroundglassError(f"size {size!r} is not WIDTHxHEIGHT", "send e.g. size='512x512'", param="size")
    width, height = int(match[1]), int(match[2])
    for value in (width, height):
        if value < 8 or value % 8 or value > MAX_SIDE:
            raise GroundglassError(
                f"size {size}: each side must be a multiple of 8 from 8 to {MAX_SIDE}",
                "send e.g. size='512x512'",
                param="size",
            )
    return width, height


def check_request(n: int, prompt: str) -> None:
    """Refuse a request for no image, too many, or with an empty prompt."""
    if not 1 <= n <= MAX_N:
        raise GroundglassError(f"n must be from 1 to {MAX_N}, got {n}", "ask for fewer images", param="n")
    if not prompt.strip():
        raise GroundglassError("the prompt is empty", "describe the image", param="prompt")


class ImageGenerator:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _components(self, source: str) -> Any:
        if source in self._models:
            self._models.move_to_end(source)
            return self._models[source]
        from groundglass.dreambooth.sample import place_for_inference

        if source.endswith(".ckpt"):
            from groundglass.dreambooth.trained import load_trained

            components, _ = load_trained(source)
        else:
            from groundglass.dreambooth.model_source import open_base_model

            components = open_base_model(source, local_files_only=True)
        place_for_inference(components)
        self._models[source] = components
        while len(self._models) > KEEP_MODELS:
            self._models.popitem(last=False)
        return components

    def draw(
        self,
        *,
        model: str,
        source: str,
        prompt: str,
        n: int,
        size: str | None,
        seed: int | None,
        steps: int,
        guidance_scale: float,
        negative_prompt: str | None,
        scheduler: str,
    ) -> list[Drawn]:
        from groundglass.dreambooth.sample import check_sampling_args, default_size, generate

        check_request(n, prompt)
        width, height = parse_size(size)
        check_sampling_args(
            steps=steps,
            guidance_scale=guidance_scale,
            height=height,
            width=width,
            batch_size=n,
            scheduler=scheduler,
        )
        first = seed if seed is not None else secrets.randbelow(2**31 - MAX_N)
        seeds = [first + i for i in range(n)]
        with self._lock:
            components = self._components(source)
            images = generate(
                components,
                [prompt] * n,
                negative_prompt=negative_prompt,
                guidance_scale=guidance_scale,
                steps=steps,
                scheduler=scheduler,
                seeds=seeds,
                height=height,
                width=width,
                batch_size=n,
            )
            native = default_size(components)
        rest = {
            "steps": steps,
            "guidance_scale": guidance_scale,
            "scheduler": scheduler,
            "model": model,
            "width": width or native,
            "height": height or native,
        }
        return [
            Drawn(
                png(image, {"prompt": prompt, "negative_prompt": negative_prompt or None, "seed": s, **rest}),
                s,
            )
            for image, s in zip(images, seeds, strict=True)
        ]

    def keep(self, png: bytes) -> str:
        """Store a PNG for ``response_format=url``; returns its file name (unguessable)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"img-{secrets.token_urlsafe(24)}.png"
        (self.folder / name).write_bytes(png)
        return name

    def stored(self, name: str) -> Path | None:
        if not IMAGE_NAME.match(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None


def png(image: Any, fields: dict[str, Any]) -> bytes:
    """``image`` as PNG bytes, ``fields`` (how it was drawn) written into it as text chunks."""
    from groundglass.dreambooth.priors import png_info

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(fields))
    return buffer.getvalue()
