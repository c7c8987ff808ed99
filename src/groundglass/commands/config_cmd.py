"""``groundglass config show``: print the effective settings as TOML-like JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer

config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)


@config_app.command("show")
def show(config: Path | None = typer.Option(None, "--config", help="Config file (TOML).")) -> None:
    """Print the effective settings (file + environment + defaults) and where they came from."""
    from groundglass.config import config_path, load_settings

    settings = load_settings(config)
    path = config_path(config)
    typer.echo(f"# config file: {path or '(none; defaults and environment)'}", err=True)
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
