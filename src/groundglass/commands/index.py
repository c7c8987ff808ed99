"""CLI commands: index (placeholder until its engine lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount this group's commands on the root app."""
