"""CLI group ``groundglass dreambooth``: fit, priors, sample, export, bench.

``fit`` hands its arguments to Lightning's ``LightningCLI`` (YAML config, ``--print_config``,
command-line overrides). The other commands are plain typer commands.
"""

from __future__ import annotations

import typer

dreambooth_app = typer.Typer(help="Personalise a Stable Diffusion model from a few photos.",
                             no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from groundglass.commands import dreambooth_io

    dreambooth_io.register_into(dreambooth_app)
    app.add_typer(dreambooth_app, name="dreambooth")
