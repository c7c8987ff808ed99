"""``groundglass dreambooth demo``: personalise the embedded base model on the bundled star, show and measure.

Steps: (1) the base model draws the class images for prior preservation, (2) ``groundglass dreambooth
fit``'s code fine-tunes it on the four star photos, (3) the base and the personalised model draw the
evaluation prompts from fixed seeds, (4) a picture grid and the metrics table are written to the
output folder (``grid.png``, ``metrics.md``, ``metrics.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from groundglass.dreambooth.world.personalise import (
    RunSettings,
    draw,
    evaluate,
    load_base,
    load_personalised,
    personalise,
)
from groundglass.dreambooth.world.subject import CLASS_PROMPT, IDENTIFIER, instance_images

CELL = 96  # each 32 px image is shown 3x, nearest-neighbour
LABEL_WIDTH = 360
GRID_SEEDS = [11, 12, 13, 14, 15, 16]
GRID_PROMPTS = (
    f"a photo of a {IDENTIFIER} shape on a grid background",
    f"a photo of a blue {IDENTIFIER} shape",
    f"a photo of a green {IDENTIFIER} shape on a striped background",
    f"a photo of a purple {IDENTIFIER} shape on a gradient background",
)
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
    ("prior_shape_accuracy", "named shapes: shape ↑"),
    ("prior_colour_accuracy", "named shapes: colour ↑"),
)


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
    log(
        f"1/3 DreamBooth: {settings.steps} steps on the star "
        f"(prior preservation λ={settings.prior_loss_weight}, text encoder "
        f"{'trained' if settings.train_text_encoder else 'frozen'})"
    )
    checkpoints = personalise(
        out / "run", settings, class_dir=out / "class_images", base_model=base_model, progress=progress
    )
    trained_at = time.monotonic()
    log("2/3 drawing and measuring the base and the personalised model")
    instances = instance_images()
    base = load_base(base_model)
    personal = load_personalised(checkpoints / "last.ckpt")
    base_scores, _ = evaluate(base, seeds=seeds, class_seeds=seeds)
    personal_scores, _ = evaluate(personal, seeds=seeds, class_seeds=seeds)
    grid_seeds = (seeds or GRID_SEEDS)[: len(GRID_SEEDS)]
    base_class = draw(base, [CLASS_PROMPT], grid_seeds)[CLASS_PROMPT]
    personal_images = draw(personal, [*GRID_PROMPTS, CLASS_PROMPT], grid_seeds)
    rows = [
        ("instance images (a photo of a sks shape)", instances),
        (f"base model: {CLASS_PROMPT}", base_class),
    ]
    rows += [(f"personalised: {p}", personal_images[p]) for p in GRID_PROMPTS]
    rows.append((f"personalised: {CLASS_PROMPT} (prior kept?)", personal_images[CLASS_PROMPT]))
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
