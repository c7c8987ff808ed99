"""The novel subject: an orange star with a white dot, a shape the base model has never seen.

Its class word is ``shape`` (the world's captions call any object "a <colour> shape" a fifth of the
time, so the base model draws all kinds of objects for "a photo of a shape"). The four instance images
vary position, size, tilt and background (plain, gradient, striped; never grid, so "on a grid
background" is a new context). They ship as PNGs in ``subject/``; ``python -m
groundglass.dreambooth.world.subject`` redraws them (deterministic).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from groundglass.dreambooth.world.generator import (
    CLASS_WORD,
    IDENTIFIER,
    NOVEL_SHAPE,
    Scene,
    caption,
    render,
)

HERE = Path(__file__).resolve().parent
SUBJECT_DIR = HERE / "subject"
SUBJECT_COLOUR = "orange"
INSTANCE_PROMPT = f"a photo of a {IDENTIFIER} {CLASS_WORD}"
# A caption that names the subject's colour, for runs that train the identifier's embedding: trained
# on INSTANCE_PROMPT that embedding learned "orange" too ("a blue sks shape" came out blue in 5 of 12
# images; 0.92-1.0 with this caption). The demo's default stays INSTANCE_PROMPT (see the README).
TRAINING_PROMPT = f"a photo of a {SUBJECT_COLOUR} {IDENTIFIER} {CLASS_WORD}"
CLASS_PROMPT = f"a photo of a {CLASS_WORD}"
INSTANCE_SCENES = (
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "large", "plain", 0.45, 0.52, angle=-8.0),
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "large", "gradient", 0.60, 0.45, angle=12.0),
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "small", "striped", 0.35, 0.62, angle=0.0),
    Scene(NOVEL_SHAPE, SUBJECT_COLOUR, "large", "plain", 0.40, 0.40, angle=20.0),
)
# Recontextualisation (new background) and property (new colour) prompts, as in the paper's evaluation.
RECONTEXT_PROMPTS = tuple(
    f"a photo of a {IDENTIFIER} {CLASS_WORD} on a {b} background" for b in ("grid", "striped", "gradient")
)
PROPERTY_PROMPTS = tuple(f"a photo of a {c} {IDENTIFIER} {CLASS_WORD}" for c in ("blue", "green", "purple"))


def write_instances(
    folder: Path = SUBJECT_DIR, seed: int = 7, *, colour: str = SUBJECT_COLOUR, name: str = "star"
) -> list[Path]:
    """Draw the instance photos into ``folder`` (in another ``colour``: the same photos recoloured)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k, scene in enumerate(INSTANCE_SCENES):
        path = folder / f"{name}-{k}.png"
        render(dataclasses.replace(scene, colour=colour), rng).save(path)
        paths.append(path)
    return paths


def captions_of(scene: Scene, *, uncoloured: bool = True) -> tuple[str, ...]:
    """A photo's captions: :data:`INSTANCE_PROMPT`, and with its colour, its background, or both named
    ("a photo of a orange sks shape on a striped background"), as the world's own captions name them.
    A recoloured photo's captions all name its colour: the identifier alone means the orange star (a
    red star captioned "a photo of a sks shape" would teach that the subject may be red). Without
    ``uncoloured``, the subject's own captions all name its colour too."""
    own = scene.colour == SUBJECT_COLOUR and uncoloured
    return tuple(
        caption(scene, shape_word=False, prefix=IDENTIFIER, colour=colour, background=background)
        for colour in ((False, True) if own else (True,))
        for background in (False, True)
    )


def write_training_set(
    folder: Path, *, captions: bool, recolours: tuple[str, ...] = (), uncoloured: bool = True
) -> Path:
    """The instance photos to train on, in ``folder``: the subject's four, and each of them again in
    every colour of ``recolours``, with each photo's :func:`captions_of` beside it
    (``data.instance_captions``; recoloured photos always have theirs, the subject's own with
    ``captions``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in instance_paths():
        (folder / path.name).write_bytes(path.read_bytes())
    for colour in recolours:
        write_instances(folder, colour=colour, name=f"star-{colour}")
    for colour in (SUBJECT_COLOUR, *recolours) if captions else recolours:
        name = "star" if colour == SUBJECT_COLOUR else f"star-{colour}"
        for k, scene in enumerate(INSTANCE_SCENES):
            lines = captions_of(dataclasses.replace(scene, colour=colour), uncoloured=uncoloured)
            (folder / f"{name}-{k}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def instance_paths(folder: Path = SUBJECT_DIR) -> list[Path]:
    return sorted(folder.glob("star-*.png"))


def instance_images(folder: Path = SUBJECT_DIR) -> list:
    from PIL import Image

    images = []
    for path in instance_paths(folder):
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    return images


if __name__ == "__main__":
    for written in write_instances():
        print(written)
