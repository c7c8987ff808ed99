"""``groundglass dreambooth demo``: personalise the embedded base model on the bundled star, show and measure.

Steps: (1) the base model draws the class images for prior preservation, (2) ``groundglass dreambooth
fit``'s code fine-tunes it on the four star photos, (3) the base and the personalised model draw the
evaluation prompts from fixed seeds, (4) a picture grid of those same images and the metrics table are
written to the output folder (``grid.png``, ``metrics.md``, ``metrics.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from groundglass.dreambooth.world.personalise import (
    PRIOR_PROMPTS,
    RunSettings,
    evaluate,
    load_base,
    load_personalised,
    personalise,
)
from groundglass.dreambooth.world.subject import (
    CLASS_PROMPT,
    INSTANCE_PROMPT,
    PROPERTY_PROMPTS,
    RECONTEXT_PROMPTS,
    instance_images,
)

CELL = 96  # each 32 px image is shown 3x, nearest-neighbour
LABEL_WIDTH = 360
GRID_COLUMNS = 4
# The grid shows the very images the metrics were computed from (no extra drawing): the plain
# prompt, each new background and colour, the class prompt, and the named shapes.
GRID_PROMPTS = (INSTANCE_PROMPT, *RECONTEXT_PROMPTS, *PROPERTY_PROMPTS)
METRIC_NAMES = (
    ("subject_fidelity", "subject fidelity ↑"),
    ("prompt_fidelity", "prompt fidelity ↑"),
    ("pres", "PRES ↓"),
    ("div", "DIV ↑"),
    ("div_layout", "DIV layout ↑"),
)
# Whether the subject itself was learned (the classifier sees a star), and what the class kept.
IDENTITY_NAMES = (
    ("identity_plain", "star: plain prompt ↑"),
    ("identity_recontext", "star: new background ↑"),
    ("identity_property", "star: new colour ↑"),
    ("background_followed", "background followed ↑"),
    ("colour_followed", "colour followed ↑"),
    ("class_identity", "class prompt → star ↓"),
    ("named_identity", "named shapes → star ↓"),
    ("prior_shape_accuracy", "named shapes: shape ↑"),
    ("prior_colour_accuracy", "named shapes: colour ↑"),
)


def grid_rows(
    instances: list[Any],
    base_images: dict[str, list[Any]],
    personal_images: dict[str, list[Any]],
    instance_prompt: str,
) -> list[tuple[str, list[Any]]]:
    """The demo grid's rows (label, images), from the images the two models drew for the metrics."""
    rows = [
        (f"instance images ({instance_prompt})", instances),
        (f"base model: {CLASS_PROMPT}", base_images[CLASS_PROMPT][:GRID_COLUMNS]),
    ]
    rows += [(f"personalised: {p}", personal_images[p][:GRID_COLUMNS]) for p in GRID_PROMPTS]
    rows.append((f"personalised: {CLASS_PROMPT} (prior kept?)", personal_images[CLASS_PROMPT][:GRID_COLUMNS]))
    named = [personal_images[p][0] for p in PRIOR_PROMPTS]
    first, last = (p.removeprefix("a photo of a ") for p in (PRIOR_PROMPTS[0], PRIOR_PROMPTS[-1]))
    rows.append((f"personalised, named shapes: {first} ... {last} (prior kept?)", named))
    return rows


def picture_grid(rows: list[tuple[str, list[Any]]]) -> Any:
    """A labelled grid: one row per (label, images)."""
    from PIL import Image, ImageDraw, ImageFont

    columns = max(len(images) for _, images in rows)
    grid = Image.new("RGB", (LABEL_WIDTH + columns * (CELL + 4), len(rows) * (CELL + 4)), "white")
    pen = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=14)
    for r, (label, images) in enumerate(rows):
        top = r * (CELL + 4)
        lines = _wrap(label, 44)
        for k, line in enumerate(lines):
            pen.text((6, top + CELL // 2 - 9 * len(lines) + 18 * k), line, fill="black", font=font)
        for c, image in enumerate(images):
            cell = image.convert("RGB").resize((CELL, CELL), Image.Resampling.NEAREST)
            grid.paste(cell, (LABEL_WIDTH + c * (CELL + 4), top + 2))
    return grid


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def metrics_table(
    rows: dict[str, dict[str, float]], names: tuple[tuple[str, str], ...] = METRIC_NAMES
) -> str:
    """A Markdown table: the paper's metrics by default, or the ``names`` given (key, title)."""
    head = "| model | " + " | ".join(title for _, title in names) + " |"
    lines = [head, "|" + "---|" * (len(names) + 1)]
    for name, scores in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[k]:.3f}" for k, _ in names) + " |")
    return "\n".join(lines)


def run_demo(
    out: Path,
    *,
    settings: RunSettings | None = None,
    progress: bool = True,
    seeds: list[int] | None = None,
    base_model: Path | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Run the demo into ``out``; return the metrics (also written to ``out/metrics.json``)."""
    settings = settings or RunSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if settings.train_text_encoder:
        text = "text encoder trained"
    elif settings.train_identifier:
        text = "the identifier's embedding trained, the rest of the text encoder frozen"
    else:
        text = "text encoder frozen"
    log(
        f"1/3 DreamBooth: {settings.steps} steps on the star, captioned {settings.instance_prompt!r} "
        f"(prior preservation λ={settings.prior_loss_weight}, {text})"
    )
    checkpoints = personalise(
        out / "run", settings, class_dir=out / "class_images", base_model=base_model, progress=progress
    )
    trained_at = time.monotonic()
    log("2/3 drawing and measuring the base and the personalised model")
    instances = instance_images()
    base = load_base(base_model)
    personal = load_personalised(checkpoints / "last.ckpt")
    base_scores, base_images = evaluate(base, seeds=seeds, class_seeds=seeds)
    personal_scores, personal_images = evaluate(personal, seeds=seeds, class_seeds=seeds)
    rows = grid_rows(instances, base_images, personal_images, settings.instance_prompt)
    log("3/3 writing the grid and the table")
    picture_grid(rows).save(out / "grid.png")
    models = {"base model": base_scores, f"DreamBooth, {settings.steps} steps": personal_scores}
    table = metrics_table(models) + "\n\n" + metrics_table(models, IDENTITY_NAMES)
    (out / "metrics.md").write_text(table + "\n", encoding="utf-8")
    result = {
        "settings": vars(settings),
        "base": base_scores,
        "personalised": personal_scores,
        "train_seconds": round(trained_at - started, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "grid": str(out / "grid.png"),
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    log(table)
    log(
        f"grid: {out / 'grid.png'}  (training {result['train_seconds']} s, total {result['total_seconds']} s)"
    )
    return result
