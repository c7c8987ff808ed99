"""The toy world: small images of coloured shapes on patterned backgrounds, each with a caption.

Everything is a pure function of a seed (numpy's ``default_rng`` and Pillow drawing), so the same seed
gives the same images and captions on any machine. Scenes are drawn at 4x the output size and
downsampled (antialiasing). Backgrounds are grey-scale patterns so that an object's colour is never
confused with its background.

Vocabulary:
    shapes       circle, square, triangle, diamond, cross (the pretraining world)
    EXTRA_SHAPES hexagon, heart, arrow, ring, trapezoid, semicircle: a wider pretraining world, for a
                 base model whose prior knows more outlines than five (never evaluated as named shapes)
    NOVEL_SHAPE  star: never shown in pretraining; the DreamBooth subject is a star
    colours      red, green, blue, yellow, purple, orange
    sizes        small, large
    backgrounds  plain, striped, grid, gradient
    positions    the object's centre, anywhere it fits (in the metadata, not the caption)

Captions name what the image shows, with parts left out at random so the model also learns the
marginals: "a photo of a red circle on a striped background", "a photo of a large blue square",
"a photo of a green shape on a grid background" ("shape" is the class word for any object).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
EXTRA_SHAPES = ("hexagon", "heart", "arrow", "ring", "trapezoid", "semicircle")
NOVEL_SHAPE = "star"
ALL_SHAPES = (*SHAPES, NOVEL_SHAPE)  # what the measurement classifier knows
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 70, 230),
    "yellow": (240, 210, 20),
    "purple": (150, 40, 190),
    "orange": (250, 130, 10),
}
COLOUR_NAMES = tuple(COLOURS)
# Shape-colour pairs a base model can be pretrained without (``pretrain --hold-out``): one per shape,
# each colour at most once, so every shape and every colour is still seen, and drawing one of them means
# composing a shape with a colour it never wore, which is what "a blue sks shape" asks of DreamBooth.
# These are the pairs of the README's held-out run.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("circle", "blue"),
        ("square", "green"),
        ("triangle", "purple"),
        ("diamond", "yellow"),
        ("cross", "orange"),
    }
)
SIZES = ("small", "large")
BACKGROUNDS = ("plain", "striped", "grid", "gradient")
CLASS_WORD = "shape"
IDENTIFIER = "sks"
# Every word a caption or a DreamBooth prompt of this world uses; the tokenizer gets one token for each.
WORDS = (
    "a",
    "photo",
    "of",
    "on",
    "background",
    CLASS_WORD,
    IDENTIFIER,
    *SHAPES,
    *COLOUR_NAMES,
    *SIZES,
    *BACKGROUNDS,
)


def world_words(shapes: tuple[str, ...] = SHAPES) -> tuple[str, ...]:
    """The words of a world whose pretraining draws ``shapes``: :data:`WORDS` and any shape not in it."""
    return (*WORDS, *(s for s in shapes if s not in WORDS))


SUPERSAMPLE = 4


@dataclass(frozen=True)
class Scene:
    """What one image shows."""

    shape: str
    colour: str
    size: str
    background: str
    x: float  # object centre, fraction of the width
    y: float  # object centre, fraction of the height
    angle: float = 0.0  # rotation in degrees (stars only, to vary the subject's pose)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def caption(
    scene: Scene,
    *,
    shape_word: bool = True,
    colour: bool = True,
    size: bool = False,
    background: bool = True,
    prefix: str = "",
) -> str:
    """``a photo of a [size] [colour] [prefix] shape|class [on a B background]``."""
    words = ["a", "photo", "of", "a"]
    if size:
        words.append(scene.size)
    if colour:
        words.append(scene.colour)
    if prefix:
        words.append(prefix)
    words.append(scene.shape if shape_word else CLASS_WORD)
    if background:
        words += ["on", "a", scene.background, "background"]
    return " ".join(words)


def random_caption(scene: Scene, rng: np.random.Generator) -> str:
    """A caption with parts left out at random (colour 85%, background 70%, size 30%, shape name 80%)."""
    return caption(
        scene,
        shape_word=rng.random() < 0.8,
        colour=rng.random() < 0.85,
        size=rng.random() < 0.3,
        background=rng.random() < 0.7,
    )


def background_pattern(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A grey-scale pattern (float32 HxW in [0, 255]) with a random phase, period and tone."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    light = float(rng.uniform(200, 245))
    dark = float(rng.uniform(80, 140))
    if kind == "plain":
        return np.full((size, size), float(rng.uniform(150, 235)), np.float32)
    if kind == "striped":
        period = rng.uniform(0.18, 0.28) * size
        coord = xx if rng.random() < 0.5 else yy
        phase = rng.uniform(0, period)
        return np.where(((coord + phase) % period) < period / 2, light, dark).astype(np.float32)
    if kind == "grid":
        period = rng.uniform(0.2, 0.3) * size
        width = period * 0.22
        ox, oy = rng.uniform(0, period, 2)
        lines = (((xx + ox) % period) < width) | (((yy + oy) % period) < width)
        return np.where(lines, dark * 0.6, light).astype(np.float32)
    if kind == "gradient":
        theta = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(theta) + yy * math.sin(theta)) / size
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return (40 + t * 200).astype(np.float32)
    raise ValueError(f"unknown background {kind!r}")


def outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """The polygon of ``shape`` (any but the circle) around (cx, cy), radius ``r``, turned ``angle``°."""

    def rot(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        a = math.radians(angle)
        return [
            (cx + px * math.cos(a) - py * math.sin(a), cy + px * math.sin(a) + py * math.cos(a))
            for px, py in points
        ]

    if shape == "square":
        s = r * 0.85
        return rot([(-s, -s), (s, -s), (s, s), (-s, s)])
    if shape == "diamond":
        return rot([(0, -r), (r * 0.75, 0), (0, r), (-r * 0.75, 0)])
    if shape == "triangle":
        return rot([(0, -r), (r * 0.95, r * 0.75), (-r * 0.95, r * 0.75)])
    if shape == "cross":
        w = r * 0.38
        return rot(
            [
                (-w, -r),
                (w, -r),
                (w, -w),
                (r, -w),
                (r, w),
                (w, w),
                (w, r),
                (-w, r),
                (-w, w),
                (-r, w),
                (-r, -w),
                (-w, -w),
            ]
        )
    if shape == "hexagon":
        return rot([(r * math.cos(k * math.pi / 3), r * math.sin(k * math.pi / 3)) for k in range(6)])
    if shape == "trapezoid":
        return rot([(-r * 0.5, -r * 0.7), (r * 0.5, -r * 0.7), (r, r * 0.7), (-r, r * 0.7)])
    if shape == "arrow":
        w = r * 0.3
        return rot([(-r, -w), (0, -w), (0, -r * 0.8), (r, 0), (0, r * 0.8), (0, w), (-r, w)])
    if shape == "semicircle":
        arc = [(r * math.cos(math.pi * k / 16), r * 0.5 - r * math.sin(math.pi * k / 16)) for k in range(17)]
        return rot(arc)
    if shape == "heart":
        # the classic parametric heart (x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t)
        pts = []
        for k in range(32):
            t = 2 * math.pi * k / 32
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((r * x / 17, -r * (y + 2) / 17))
        return rot(pts)
    if shape == "star":
        pts = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((radius * math.cos(a), radius * math.sin(a)))
        return rot(pts)
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, rng: np.random.Generator, *, size: int = 32) -> Image.Image:
    """Draw ``scene`` (the background's random details come from ``rng``) as an RGB image."""
    big = size * SUPERSAMPLE
    grey = background_pattern(scene.background, big, rng)
    canvas = Image.fromarray(np.repeat(grey[..., None], 3, axis=2).round().astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    radius = object_radius(scene.size) * big
    cx, cy = scene.x * big, scene.y * big
    fill = COLOURS[scene.colour]
    if scene.shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif scene.shape == "ring":
        box = [cx - radius, cy - radius, cx + radius, cy + radius]
        draw.ellipse(box, outline=fill, width=round(radius * 0.4))
    else:
        draw.polygon(outline(scene.shape, cx, cy, radius, scene.angle), fill=fill)
    if scene.shape == NOVEL_SHAPE:  # the subject's own mark: a white dot in its centre
        dot = radius * 0.2
        draw.ellipse([cx - dot, cy - dot, cx + dot, cy + dot], fill=(255, 255, 255))
    return canvas.resize((size, size), Image.Resampling.BOX)


def object_radius(size_word: str) -> float:
    """The object's radius as a fraction of the image side."""
    return 0.22 if size_word == "small" else 0.34


def random_scene(
    rng: np.random.Generator,
    *,
    shapes: tuple[str, ...] = SHAPES,
    colours: tuple[str, ...] = COLOUR_NAMES,
    backgrounds: tuple[str, ...] = BACKGROUNDS,
    exclude: frozenset[tuple[str, str]] = frozenset(),
) -> Scene:
    """A random scene; a (shape, colour) pair in ``exclude`` gets another colour (without one, the
    draws are the same as ever, so a seed's world is unchanged)."""
    shape = str(rng.choice(shapes))
    size_word = str(rng.choice(SIZES))
    margin = object_radius(size_word) + 0.04
    x, y = (float(v) for v in rng.uniform(margin, 1 - margin, 2))
    angle = float(rng.uniform(-25, 25)) if shape == NOVEL_SHAPE else 0.0
    colour = str(rng.choice(colours))
    if (shape, colour) in exclude:
        colour = str(rng.choice([c for c in colours if (shape, c) not in exclude]))
    return Scene(
        shape=shape,
        colour=colour,
        size=size_word,
        background=str(rng.choice(backgrounds)),
        x=x,
        y=y,
        angle=angle,
    )


def make_examples(
    n: int,
    seed: int,
    *,
    size: int = 32,
    shapes: tuple[str, ...] = SHAPES,
    exclude: frozenset[tuple[str, str]] = frozenset(),
) -> tuple[np.ndarray, list[Scene], list[str]]:
    """``n`` images (uint8 array n x size x size x 3), their scenes and random captions, from ``seed``;
    no scene pairs a shape with a colour as in ``exclude``."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    scenes: list[Scene] = []
    captions: list[str] = []
    for i in range(n):
        scene = random_scene(rng, shapes=shapes, exclude=exclude)
        images[i] = np.asarray(render(scene, rng, size=size))
        scenes.append(scene)
        captions.append(random_caption(scene, rng))
    return images, scenes, captions
