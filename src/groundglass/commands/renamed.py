"""Options renamed so that one name means one thing: the old spelling works for one more release.

A renamed option keeps its old spelling as a hidden option; :func:`old_spelling` takes its value when
it was given and prints a one-line warning naming the new spelling. The next release removes both.
"""

from __future__ import annotations

from typing import TypeVar

import typer

T = TypeVar("T")


def old_spelling(old_value: T | None, old: str, new: str, value: T) -> T:
    """``old_value`` when the old spelling ``old`` was given (warning to use ``new``), else ``value``."""
    if old_value is None:
        return value
    typer.secho(
        f"warning: {old} is deprecated and goes away in the next release; use {new}",
        err=True,
        fg=typer.colors.YELLOW,
    )
    return old_value
