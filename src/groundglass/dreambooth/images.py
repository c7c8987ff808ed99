"""Image files: find and check a folder's images, load one at the training resolution.

A folder is checked whole before training: every file that cannot be used (unsupported format,
undecodable, too small) is listed in one error, so a user fixes them all at once rather than one per
run. Hidden files, sub-folders and sidecar files (captions, generation records, notes) are skipped.
"""

from __future__ import annotations

from pathlib import Path

import torch

from groundglass.errors import GroundglassError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")  # priors.py counts the same set
# Files that may sit beside images (prompts and seeds of generated class images, captions, notes).
SIDECAR_SUFFIXES = (".json", ".jsonl", ".txt", ".csv", ".yaml", ".yml", ".md", ".toml")
MAX_LISTED = 50


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
        problem = _problem(path, min_size)
        if problem is None:
            images.append(path)
        else:
            problems.append(f"{_describe(path, folder)}: {problem}")
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


def _problem(path: Path, min_size: int) -> str | None:
    """Why the image file at ``path`` cannot be used (format, decoding, size), or None."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"unsupported format ({path.suffix or 'no extension'}); use {', '.join(IMAGE_SUFFIXES[:4])}"
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
        return f"cannot be read ({str(exc).splitlines()[0] or type(exc).__name__})"
    if min(width, height) < min_size:
        return f"too small ({width}x{height} px; the short side needs at least {min_size} px)"
    return None


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
