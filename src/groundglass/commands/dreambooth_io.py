"""CLI commands ``groundglass dreambooth priors|sample|export``.

Thin faces over :mod:`groundglass.dreambooth.priors`, :mod:`~groundglass.dreambooth.sample` and
:mod:`~groundglass.dreambooth.export`; heavy imports (torch, diffusers) happen inside the commands.
Option names match the fit config's keys (``--class-prompt`` is ``data.class_prompt``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from PIL import Image

# The help of the options priors and sample share
SCHEDULER_HELP = "Sampler: ddim, dpm++ or euler."
NEGATIVE_PROMPT_HELP = "What the images should not show."
DEVICE_HELP = "cpu, cuda, cuda:1 ... (default: cuda if present)."


def _slug(text: str, limit: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "sample"


def _free_path(folder: Path, stem: str) -> Path:
    path = folder / f"{stem}.png"
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}.png"
        n += 1
    return path


def priors(
    base_model: str = typer.Option(
        ..., "--base-model", help="Base model: diffusers folder or Hugging Face id."
    ),
    class_prompt: str = typer.Option(
        ..., "--class-prompt", help='Prompt of the class, e.g. "a photo of a dog".'
    ),
    class_data_dir: Path = typer.Option(
        ..., "--class-data-dir", help="Folder of class images (created if needed)."
    ),
    num_class_images: int = typer.Option(
        100, "--num-class-images", help="How many class images it should hold."
    ),
    negative_prompt: str | None = typer.Option(None, "--negative-prompt", help=NEGATIVE_PROMPT_HELP),
    guidance_scale: float = typer.Option(7.5, "--guidance-scale", help="Classifier-free guidance scale."),
    steps: int = typer.Option(30, "--steps", help="Denoising steps per image."),
    scheduler: str = typer.Option("ddim", "--scheduler", help=SCHEDULER_HELP),
    resolution: int = typer.Option(512, "--resolution", help="Image size in pixels (square)."),
    seed: int = typer.Option(0, "--seed", help="Image k uses seed + k."),
    batch_size: int = typer.Option(4, "--batch-size", help="Images per batch."),
    local_files_only: bool = typer.Option(False, "--local-files-only", help="Never download the base model."),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Top up a class-image folder for prior preservation with images from the base model.

    Existing images are kept; image k is generated from seed + k, so a run can be resumed and any image
    regenerated. Prompts and seeds are recorded in CLASS_DATA_DIR/priors.jsonl. The options are the fit
    config's keys: model.base_model, data.class_prompt, data.class_data_dir, data.num_class_images and
    data.class_image_generation.*.

    Example: groundglass dreambooth priors --base-model stable-diffusion-v1-5/stable-diffusion-v1-5
    --class-prompt "a photo of a dog" --class-data-dir data/dog-class --num-class-images 200
    """
    from groundglass.dreambooth.priors import ensure_class_images, existing_images

    before = len(existing_images(class_data_dir))
    made = ensure_class_images(
        base_model,
        class_prompt,
        class_data_dir,
        num_class_images,
        local_files_only=local_files_only,
        batch_size=batch_size,
        seed=seed,
        resolution=resolution,
        steps=steps,
        guidance_scale=guidance_scale,
        scheduler=scheduler,
        progress=not quiet,
        negative_prompt=negative_prompt,
        device=device,
    )
    typer.echo(
        f"{class_data_dir}: generated {made} class images, kept {before}; "
        f"{len(existing_images(class_data_dir))} in total"
    )


@dataclass(frozen=True)
class _Drawing:
    """What ``sample`` draws: one prompt and its settings, once per seed."""

    prompt: str
    negative_prompt: str | None
    guidance_scale: float
    steps: int
    scheduler: str
    height: int | None
    width: int | None

    def check(self, num_images: int, batch_size: int) -> None:
        """Refuse bad arguments with the fix, before any model is loaded."""
        from groundglass.dreambooth.sample import check_sampling_args
        from groundglass.errors import GroundglassError

        check_sampling_args(
            steps=self.steps,
            guidance_scale=self.guidance_scale,
            height=self.height,
            width=self.width,
            batch_size=batch_size,
            scheduler=self.scheduler,
        )
        if num_images < 1:
            raise GroundglassError(
                f"--num-images must be at least 1, got {num_images}", "pass --num-images 1 or more"
            )

    def draw(self, components: Any, seeds: list[int], batch_size: int, quiet: bool) -> list[Image.Image]:
        """One image per seed, with a progress bar unless ``quiet``."""
        from tqdm.auto import tqdm

        from groundglass.dreambooth.sample import generate

        with tqdm(total=len(seeds), desc="sampling", unit="img", disable=quiet) as bar:
            return generate(
                components,
                [self.prompt] * len(seeds),
                negative_prompt=self.negative_prompt,
                guidance_scale=self.guidance_scale,
                steps=self.steps,
                scheduler=self.scheduler,
                seeds=seeds,
                height=self.height,
                width=self.width,
                batch_size=min(batch_size, len(seeds)),
                on_images_done=lambda done: bar.update(done - bar.n),
            )

    def save(self, images: list[Image.Image], seeds: list[int], out: Path, model: str, size: int) -> None:
        """Each image as OUT/PROMPT-SEED.png (never over another file), its settings in its metadata;
        prints each path. ``size``: the model's native size, for the height or width left out."""
        from groundglass.dreambooth.priors import save_png

        for image, image_seed in zip(images, seeds, strict=True):
            path = _free_path(out, f"{_slug(self.prompt)}-{image_seed}")
            save_png(
                image,
                path,
                {
                    "prompt": self.prompt,
                    "negative_prompt": self.negative_prompt,
                    "seed": image_seed,
                    "steps": self.steps,
                    "guidance_scale": self.guidance_scale,
                    "scheduler": self.scheduler,
                    "model": model,
                    "height": self.height or size,
                    "width": self.width or size,
                },
            )
            typer.echo(str(path))


def sample(
    model: str = typer.Option(
        ..., "--model", help="Diffusers folder (export or base), model id, or fit .ckpt."
    ),
    prompt: str = typer.Option(..., "--prompt", help='e.g. "a photo of sks dog in the snow".'),
    negative_prompt: str | None = typer.Option(None, "--negative-prompt", help=NEGATIVE_PROMPT_HELP),
    guidance_scale: float = typer.Option(7.5, "--guidance-scale", help="Classifier-free guidance scale."),
    steps: int = typer.Option(30, "--steps", help="Denoising steps."),
    scheduler: str = typer.Option("ddim", "--scheduler", help=SCHEDULER_HELP),
    seed: int = typer.Option(0, "--seed", help="Image i uses seed + i."),
    num_images: int = typer.Option(1, "--num-images", help="How many images."),
    batch_size: int = typer.Option(4, "--batch-size", help="Images per batch."),
    height: int | None = typer.Option(None, "--height", help="Pixels (default: the model's native size)."),
    width: int | None = typer.Option(None, "--width", help="Pixels (default: the model's native size)."),
    out: Path = typer.Option(Path("samples"), "--out", help="Folder for the PNG files."),
    use_ema: bool = typer.Option(
        True, "--use-ema/--no-use-ema", help="With a .ckpt: use the EMA weights if it has them."
    ),
    ema: bool | None = typer.Option(None, "--ema/--no-ema", hidden=True, help="Deprecated: --use-ema."),
    local_files_only: bool = typer.Option(False, "--local-files-only", help="Never download the model."),
    device: str | None = typer.Option(None, "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate images; each PNG records prompt, seed, steps, scale, scheduler and model in its metadata.

    Example: groundglass dreambooth sample --model out/sks-dog --prompt "a photo of sks dog in the snow"
    --num-images 4 --out samples/
    """
    from groundglass.commands.renamed import old_spelling
    from groundglass.dreambooth.export import prepare_out_dir
    from groundglass.dreambooth.model_source import open_model
    from groundglass.dreambooth.sample import default_size, place_for_inference

    use_ema = old_spelling(ema, "--ema/--no-ema", "--use-ema/--no-use-ema", use_ema)
    drawing = _Drawing(prompt, negative_prompt, guidance_scale, steps, scheduler, height, width)
    drawing.check(num_images, batch_size)
    out = prepare_out_dir(out)
    opened = open_model(model, use_ema=use_ema, local_files_only=local_files_only)
    place_for_inference(opened.components, device)
    seeds = [seed + i for i in range(num_images)]
    images = drawing.draw(opened.components, seeds, batch_size, quiet)
    drawing.save(images, seeds, out, model, default_size(opened.components))


def export(
    ckpt: str = typer.Option(..., "--ckpt", help="A .ckpt from `dreambooth fit` (or a diffusers folder)."),
    out: Path = typer.Option(..., "--out", help="Output folder (becomes a diffusers folder)."),
    fmt: str = typer.Option(
        "all",
        "--format",
        help="diffusers, single-file, lora (diffusers/PEFT), lora-kohya (A1111, ComfyUI, Forge), "
        "lora-comfyui, or all.",
    ),
    half: bool = typer.Option(False, "--half", help="Save weights in float16 (half the size)."),
    use_ema: bool = typer.Option(
        True, "--use-ema/--no-use-ema", help="Export the EMA weights if the run kept them."
    ),
    ema: bool | None = typer.Option(None, "--ema/--no-ema", hidden=True, help="Deprecated: --use-ema."),
    name: str | None = typer.Option(
        None, "--name", help="Single-file name (default: the --out folder's name)."
    ),
) -> None:
    """Export a trained model: diffusers folder, single .safetensors (A1111/ComfyUI), LoRA weights.

    OUT becomes a diffusers folder; OUT/NAME.safetensors is the original Stable Diffusion (or SDXL)
    layout; LoRA runs also get OUT/lora/pytorch_lora_weights.safetensors (pipe.load_lora_weights("OUT/lora")),
    OUT/lora/NAME-kohya.safetensors (A1111, ComfyUI, Forge) and OUT/lora/NAME-comfyui.safetensors.
    Only safetensors and groundglass checkpoints are read: pickle files from elsewhere are refused.

    Example: groundglass dreambooth export --ckpt runs/sks-dog/checkpoints/last.ckpt --out out/sks-dog
    """
    from groundglass.commands.renamed import old_spelling
    from groundglass.dreambooth.export import export_model, parse_formats, prepare_out_dir
    from groundglass.dreambooth.lora_formats import LoraRun
    from groundglass.dreambooth.model_source import open_model

    use_ema = old_spelling(ema, "--ema/--no-ema", "--use-ema/--no-use-ema", use_ema)
    formats = parse_formats(fmt)
    prepare_out_dir(out)
    opened = open_model(ckpt, use_ema=use_ema, local_files_only=True)
    run = LoraRun.of(opened.hparams) if opened.hparams else LoraRun(base_model=ckpt)
    written = export_model(opened.components, out, formats=formats, half=half, name=name, run=run)
    for kind, path in written.items():
        typer.echo(f"{kind}: {path}")


def register_into(group: typer.Typer) -> None:
    """Mount priors/sample/export on the dreambooth group."""
    group.command("priors")(priors)
    group.command("sample")(sample)
    group.command("export")(export)
