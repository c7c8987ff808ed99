"""`--help` shows what the code says: each option's help text in full, and no note meant for developers.

Typer renders help with Rich markup, where a word in square brackets is a style tag and silently
vanishes ("the config's [search] section" printed as "the config's  section"). Each command's help is
rendered in a subprocess, as a user runs it, on a wide terminal so that nothing is cut to fit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from groundglass.cli import app

GROUNDGLASS = str(Path(sys.executable).with_name("groundglass"))
BOX = re.compile(r"[│╭╮╰╯─]+")


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, [*path, name])


# A command without typer's --help (``dreambooth fit``) hands --help to LightningCLI's own parser.
COMMANDS = [
    (path, cmd)
    for path, cmd in _commands(typer.main.get_command(app), [])
    if path and getattr(cmd, "add_help_option", True)
]


def _flat(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


def _rendered(path: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "1000", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run(
        [GROUNDGLASS, *path, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return _flat(done.stdout)


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_help_is_shown_whole(path: list[str], command: Any) -> None:
    shown = _rendered(path)
    for param in command.params:
        text = getattr(param, "help", None)
        if text and not getattr(param, "hidden", False):
            assert _flat(text) in shown, f"{' '.join(path)} {param.name}: help cut when rendered"
    summary = (command.help or "").strip().split("\n\n")[0]
    assert _flat(summary) in shown


def test_no_developer_notes_in_command_help() -> None:
    """A docstring's later paragraphs are shown to users too: they must speak to users."""
    for path, command in COMMANDS:
        for word in ("the helpers", "the signature", "typer reads"):
            assert word not in (command.help or ""), f"{' '.join(path)}: '{word}' in its --help"
