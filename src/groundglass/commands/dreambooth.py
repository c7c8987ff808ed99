"""CLI group ``groundglass dreambooth``: fit, tiny, and (from dreambooth_io) priors, sample, export.

``fit`` hands its arguments to Lightning's ``LightningCLI`` (YAML config, ``--print_config``,
command-line overrides such as ``--trainer.max_steps 400``, ``--ckpt_path last``); ``fit --help``
lists every option. The other commands are plain typer commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

dreambooth_app = typer.Typer(help="Personalise a Stable Diffusion model from a few photos.",
                             no_args_is_help=True)


@dreambooth_app.command(
    "fit", add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def fit(ctx: typer.Context) -> None:
    """Train: --config run.yaml [--print_config] [--ckpt_path last] [--KEY VALUE ...]; --help lists all."""
    from groundglass.dreambooth.fit import run_fit

    code = run_fit(list(ctx.args))
    if code:
        raise typer.Exit(code)


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
        raise GroundglassError(f"--prediction-type {prediction_type!r} is not supported",
                               "use epsilon or v_prediction")
    out = build_tiny_pipeline(folder, seed=seed, prediction_type=prediction_type, sample_size=resolution)
    print(out)


def register(app: typer.Typer) -> None:
    from groundglass.commands import dreambooth_io

    dreambooth_io.register_into(dreambooth_app)
    app.add_typer(dreambooth_app, name="dreambooth")
