"""Class ("prior") images for prior preservation, generated with the base model when too few exist.

``ensure_class_images`` tops a class folder up to ``num_images`` images. Generated image ``k`` is
``class-{k:05d}.png`` drawn from seed ``seed + k``, so a run is reproducible and resumable: images
already there (generated or the user's own) are kept, and only the missing indices are generated.
Each generated image's prompt, seed and sampler settings go into ``priors.jsonl`` next to the images
(rewritten atomically after every batch) and into the PNG's own text chunks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from groundglass.dreambooth.images import IMAGE_SUFFIXES
from groundglass.dreambooth.sample import check_sampling_args, generate, place_for_inference
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

MANIFEST_NAME = "priors.jsonl"

log = get_logger(__name__)


def class_image_name(index: int) -> str:
    return f"class-{index:05d}.png"


def existing_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` (hidden and temporary files excluded)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def missing_indices(folder: Path, num_images: int) -> list[int]:
    """Which ``class-k`` images to generate so that ``folder`` holds ``num_images`` images."""
    have = existing_images(folder)
    needed = num_images - len(have)
    names = {p.name for p in have}
    indices: list[int] = []
    k = 0
    while len(indices) < needed:
        if class_image_name(k) not in names:
            indices.append(k)
        k += 1
    return indices


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """Manifest entries by file name (later lines win)."""
    path = folder / MANIFEST_NAME
    entries: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                entries[entry["file"]] = entry
    return entries


def _write_manifest(folder: Path, entries: dict[str, dict[str, Any]]) -> None:
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    lines = [json.dumps(entries[name], sort_keys=True) for name in sorted(entries)]
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_NAME)


def png_info(fields: dict[str, Any]) -> Any:
    """PNG text chunks: one per field, plus A1111's ``parameters`` line so other tools show the settings."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in fields.items():
        if value is not None:
            info.add_text(key, str(value))
    parts = [fields["prompt"]]
    if fields.get("negative_prompt"):
        parts.append(f"Negative prompt: {fields['negative_prompt']}")
    parts.append(
        f"Steps: {fields['steps']}, Sampler: {fields['scheduler']}, CFG scale: {fields['guidance_scale']}, "
        f"Seed: {fields['seed']}, Size: {fields['width']}x{fields['height']}, Model: {fields['model']}"
    )
    info.add_text("parameters", "\n".join(parts))
    return info


def save_png(image: Any, path: Path, fields: dict[str, Any]) -> None:
    """Write ``image`` with metadata atomically (a crash never leaves a truncated PNG behind)."""
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", pnginfo=png_info(fields))
    os.replace(tmp, path)


def _batches(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def prepare_class_dir(class_dir: Path) -> None:
    try:
        class_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GroundglassError(
            f"cannot create class image folder {class_dir}: {exc.strerror}",
            "pass a --class-data-dir (data.class_data_dir) you can write to",
        ) from exc
    if not os.access(class_dir, os.W_OK):
        raise GroundglassError(
            f"class image folder {class_dir} is not writable",
            "pass a --class-data-dir (data.class_data_dir) you can write to, or fix its permissions",
        )


def _check_request(class_prompt: str, num_images: int, sampling: dict[str, Any], batch_size: int) -> None:
    """Reject a bad request (with the fix) before any model is loaded."""
    if num_images < 0:
        raise GroundglassError(
            f"num_class_images must be 0 or more, got {num_images}",
            "pass --num-class-images 100 (or 0 to skip)",
            param="num_class_images",
        )
    if not class_prompt.strip():
        raise GroundglassError(
            "the class prompt is empty", 'pass --class-prompt "a photo of a dog"', param="class_prompt"
        )
    check_sampling_args(
        steps=sampling["steps"],
        guidance_scale=sampling["guidance_scale"],
        height=sampling["height"],
        width=sampling["width"],
        batch_size=batch_size,
        scheduler=sampling["scheduler"],
    )


def _warn_other_prompts(manifest: dict[str, Any], class_prompt: str, class_dir: Path) -> None:
    """Images drawn for another prompt still count, but the user should know they are there."""
    other_prompts = {e["prompt"] for e in manifest.values() if e.get("prompt") != class_prompt}
    if other_prompts:
        log.warning(
            "class folder holds images generated for another prompt",
            class_dir=str(class_dir),
            prompts=sorted(other_prompts),
            class_prompt=class_prompt,
        )


def _image_fields(pretrained: str, class_prompt: str, sampling: dict[str, Any]) -> dict[str, Any]:
    """The settings recorded with every generated image (PNG text chunks and manifest), seed aside."""
    return {
        "prompt": class_prompt,
        "negative_prompt": sampling["negative_prompt"] or None,
        "steps": sampling["steps"],
        "guidance_scale": sampling["guidance_scale"],
        "scheduler": sampling["scheduler"],
        "model": pretrained,
        "height": sampling["height"],
        "width": sampling["width"],
    }


def _draw_and_record(
    components: Any,
    class_dir: Path,
    indices: list[int],
    manifest: dict[str, dict[str, Any]],
    fields_common: dict[str, Any],
    sampling: dict[str, Any],
    *,
    seed: int,
    batch_size: int,
    progress: bool,
) -> None:
    """Generate image ``k`` of ``indices`` from seed ``seed + k``, a batch at a time; save each image with
    its fields and rewrite the manifest after every batch, so an interrupted run keeps what it drew.

    ``sampling`` holds :func:`generate`'s keyword arguments other than the prompts, seeds and batch size.
    """
    from tqdm.auto import tqdm

    class_prompt = fields_common["prompt"]
    with tqdm(total=len(indices), desc="class images", unit="img", disable=not progress) as bar:
        for batch in _batches(indices, batch_size):
            seeds = [seed + k for k in batch]
            images = generate(
                components, [class_prompt] * len(batch), seeds=seeds, batch_size=len(batch), **sampling
            )
            for k, image, image_seed in zip(batch, images, seeds, strict=True):
                name = class_image_name(k)
                fields = {**fields_common, "seed": image_seed}
                save_png(image, class_dir / name, fields)
                manifest[name] = {"file": name, **{key: v for key, v in fields.items() if v is not None}}
            _write_manifest(class_dir, manifest)
            bar.update(len(batch))


def ensure_class_images(
    pretrained: str,
    class_prompt: str,
    class_dir: Path,
    num_images: int,
    *,
    local_files_only: bool = False,
    batch_size: int = 4,
    seed: int = 0,
    resolution: int = 512,
    steps: int = 30,
    guidance_scale: float = 7.5,
    scheduler: str = "ddim",
    progress: bool = True,
    negative_prompt: str | None = None,
    device: str | None = None,
    vae: str | None = None,
) -> int:
    """Generate the class images ``class_dir`` lacks to hold ``num_images``; return how many were generated.

    The base model is loaded only when something is missing. ``device`` defaults to CUDA when available
    (in float16) and the CPU otherwise (float32).
    """
    class_dir = Path(class_dir)
    sampling: dict[str, Any] = {
        "negative_prompt": negative_prompt,
        "guidance_scale": guidance_scale,
        "steps": steps,
        "scheduler": scheduler,
        "height": resolution,
        "width": resolution,
    }
    _check_request(class_prompt, num_images, sampling, batch_size)
    indices = missing_indices(class_dir, num_images)
    if not indices:
        return 0
    prepare_class_dir(class_dir)
    manifest = read_manifest(class_dir)
    _warn_other_prompts(manifest, class_prompt, class_dir)

    from groundglass.dreambooth.model_source import open_base_model

    components = open_base_model(pretrained, local_files_only=local_files_only, vae=vae)
    place_for_inference(components, device)
    _draw_and_record(
        components,
        class_dir,
        indices,
        manifest,
        _image_fields(pretrained, class_prompt, sampling),
        sampling,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    log.info("class images generated", class_dir=str(class_dir), generated=len(indices), total=num_images)
    return len(indices)
