"""CLI group ``groundglass dreambooth``: fit, bench, tiny, and (from dreambooth_io) priors, sample, export.

``fit`` hands its arguments to Lightning's ``LightningCLI`` (YAML config, ``--print_config``,
command-line overrides such as ``--trainer.max_steps 400``, ``--ckpt_path last``); ``fit --help``
lists every option. ``bench`` times a fit config (and a naive baseline). The other commands are plain
typer commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

dreambooth_app = typer.Typer(
    help="Personalise a Stable Diffusion model from a few photos.", no_args_is_help=True
)


@dreambooth_app.command(
    "fit",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def fit(ctx: typer.Context) -> None:
    """Train: --config run.yaml [--print_config] [--ckpt_path last] [--KEY VALUE ...]; --help lists all."""
    from groundglass.dreambooth.fit import run_fit

    code = run_fit(list(ctx.args))
    if code:
        raise typer.Exit(code)


@dreambooth_app.command("bench")
def bench(
    config: Path = typer.Option(..., "--config", help="A fit config (YAML)."),
    train_steps: int = typer.Option(20, "--train-steps", help="Optimizer steps to time."),
    steps: int | None = typer.Option(None, "--steps", hidden=True, help="Deprecated: --train-steps."),
    warmup_steps: int = typer.Option(3, "--warmup-steps", help="Untimed optimizer steps first."),
    warmup: int | None = typer.Option(None, "--warmup", hidden=True, help="Deprecated: --warmup-steps."),
    compare: bool = typer.Option(
        False, "--compare", help="Also measure the naive baseline (no caching, two forward passes)."
    ),
) -> None:
    """Training speed (steps/s, s/step) and peak memory of a fit config; --compare adds a naive baseline."""
    from groundglass.commands.renamed import old_spelling
    from groundglass.dreambooth.bench import format_results, run_bench

    steps = old_spelling(steps, "--steps", "--train-steps", train_steps)
    warmup = old_spelling(warmup, "--warmup", "--warmup-steps", warmup_steps)
    results = run_bench(config, steps=steps, warmup=warmup, compare=compare)
    device = results[0].device
    print(
        format_results(
            results,
            title=f"DreamBooth bench: {config} on {device}, {steps} timed steps after {warmup} warm-up",
        )
    )


@dreambooth_app.command("tiny")
def tiny(
    folder: Path = typer.Argument(..., help="Where to write the pipeline folder."),
    resolution: int = typer.Option(32, "--resolution", help="Image size in pixels the model is built for."),
    prediction_type: str = typer.Option("epsilon", "--prediction-type", help="epsilon or v_prediction."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights."),
) -> None:
    """Write a tiny random-weight Stable Diffusion folder (for trying the commands on a CPU)."""
    from groundglass.dreambooth.tiny import build_tiny_pipeline
    from groundglass.errors import GroundglassError

    if prediction_type not in ("epsilon", "v_prediction"):
        raise GroundglassError(
            f"--prediction-type {prediction_type!r} is not supported", "use epsilon or v_prediction"
        )
    out = build_tiny_pipeline(folder, seed=seed, prediction_type=prediction_type, sample_size=resolution)
    print(out)


def _check_demo_options(steps: int, prior_loss_weight: float, threads: int, lr_scheduler: str) -> None:
    """Refuse bad demo options with the fix, before torch is imported."""
    from groundglass.errors import GroundglassError

    if steps < 1:
        raise GroundglassError(
            f"--train-steps must be at least 1 (got {steps})", "pass e.g. --train-steps 200"
        )
    if prior_loss_weight < 0:
        raise GroundglassError(
            f"--prior-loss-weight must be >= 0 (got {prior_loss_weight})", "pass 1.0 (on) or 0 (off)"
        )
    if threads < 1:
        raise GroundglassError(f"--threads must be at least 1 (got {threads})", "pass --threads 1")
    if lr_scheduler not in ("cosine", "constant"):
        raise GroundglassError(
            f"--lr-scheduler must be cosine or constant (got {lr_scheduler!r})", "pass --lr-scheduler cosine"
        )


@dreambooth_app.command("demo")
def demo(
    out: Path = typer.Option(
        Path("runs/dreambooth-demo"), "--out", help="Folder for the grid, table and run."
    ),
    train_steps: int = typer.Option(300, "--train-steps", help="DreamBooth optimizer steps."),
    steps: int | None = typer.Option(None, "--steps", hidden=True, help="Deprecated: --train-steps."),
    prior_loss_weight: float = typer.Option(
        1.0, "--prior-loss-weight", help="λ of prior preservation (0: off)."
    ),
    train_text_encoder: bool = typer.Option(
        False, "--train-text-encoder", help="Train the text encoder too."
    ),
    train_identifier: bool = typer.Option(
        False,
        "--train-identifier/--frozen-identifier",
        help="Train the identifier's embedding (only that word of the text encoder).",
    ),
    lr_scheduler: str = typer.Option(
        "cosine", "--lr-scheduler", help="cosine (decays to 0; keeps the named shapes) or constant."
    ),
    seed: int = typer.Option(0, "--seed", help="Run seed."),
    threads: int = typer.Option(
        1, "--threads", help="CPU threads for PyTorch (the toy model's operations are too small to share)."
    ),
) -> None:
    """Personalise the embedded toy-world model on a bundled subject (a star) in minutes on a CPU."""
    import os

    from groundglass.commands.renamed import old_spelling
    from groundglass.errors import GroundglassError

    steps = old_spelling(steps, "--steps", "--train-steps", train_steps)
    _check_demo_options(steps, prior_loss_weight, threads, lr_scheduler)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    # One thread: drawing 16 images took 2.5 CPU-seconds with one thread and 50 with two on a busy
    # 2-core machine (the second thread spins waiting for the first), 309 s instead of 16-50 s.
    torch.set_num_threads(threads)
    from groundglass.dreambooth.world.demo import run_demo
    from groundglass.dreambooth.world.personalise import RunSettings

    if (out / "run" / "checkpoints" / "last.ckpt").exists():
        raise GroundglassError(f"{out} already holds a demo run", "pass another --out folder or delete it")
    run_demo(
        out,
        settings=RunSettings(
            steps=steps,
            prior_loss_weight=prior_loss_weight,
            train_text_encoder=train_text_encoder,
            train_identifier=train_identifier,
            lr_scheduler=lr_scheduler,
            seed=seed,
        ),
    )


def register(app: typer.Typer) -> None:
    from groundglass.commands import dreambooth_io

    dreambooth_io.register_into(dreambooth_app)
    app.add_typer(dreambooth_app, name="dreambooth")
