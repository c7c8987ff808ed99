"""CLI commands ``groundglass dreambooth sample`` and ``export`` (placeholder)."""

from __future__ import annotations

import typer


def register_into(group: typer.Typer) -> None:
    """Mount sample/export on the dreambooth group."""
