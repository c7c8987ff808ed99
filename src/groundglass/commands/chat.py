"""``groundglass chat``: a conversation in the terminal, searched afresh on every turn.

Each turn sends the whole conversation to the engine, which rewrites a follow-up ("and when did he
die?") into a standalone query, reuses the sources of earlier turns when they already answer it, and
otherwise searches again. The answer streams with its sources, like ``ask``. Lines read from stdin,
so a scripted conversation can be piped in. Commands: ``/new`` starts over, ``/sources`` lists the
sources gathered so far, ``/exit`` (or end of input) quits.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from groundglass.commands.answer import answer_in_terminal, checked_source, settings_from, status
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.types import Source

MAX_PRIOR_SOURCES = 24  # sources of earlier turns offered for reuse (most recent first)


def _lines(interactive: bool) -> Iterator[str]:
    """The lines typed (or piped in), stripped, blank ones skipped, until end of input or /exit."""
    while True:
        if interactive:
            typer.echo("\n> ", nl=False)
        line = sys.stdin.readline()
        if not line:
            return
        text = line.strip()
        if text in ("/exit", "/quit"):
            return
        if text:
            yield text


def _with_new(found: list[Source], gathered: list[Source]) -> list[Source]:
    """``gathered`` with the sources of ``found`` it lacks in front (the most recent first)."""
    new = [s for s in found if all((s.url, s.text) != (g.url, g.text) for g in gathered)]
    return [*new, *gathered]


def chat(
    source: str = typer.Option("index", "--source", "-s", help="Where the sources come from: index or web."),
    search: str | None = typer.Option(None, "--search", hidden=True, help="Deprecated: --source."),
    index: str | None = typer.Option(None, "--index", "-i", help="Local index (setting: retrieval.index)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model spec (setting: llm.model)."),
    reasoning_effort: str | None = typer.Option(
        None, "--reasoning-effort", "-e", help="minimal | low | medium | high."
    ),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Longest answer per turn, in tokens."),
    config: Path | None = typer.Option(None, "--config", help="Config file (TOML)."),
) -> None:
    """Talk with your sources: every turn searches again, follow-ups keep the context."""
    from groundglass.answer.engine import Engine
    from groundglass.answer.types import AskRequest, ChatMessage

    source = checked_source(source, search)
    engine = Engine(settings_from(config))
    messages: list[ChatMessage] = []
    gathered: list[Source] = []
    interactive = sys.stdin.isatty()
    failed = 0
    if interactive:
        status("groundglass chat: ask anything; /new starts over, /sources lists sources, /exit quits")
    for text in _lines(interactive):
        if text == "/new":
            messages, gathered = [], []
            status("(new conversation)")
            continue
        if text == "/sources":
            for n, s in enumerate(gathered, start=1):
                typer.echo(f"[{n}] {s.title} — {s.url}")
            continue
        if not interactive:
            typer.echo(f"\n> {text}")
        request = AskRequest(
            messages=[*messages, ChatMessage("user", text)],
            index=index,
            model=model,
            max_tokens=max_tokens,
            search=source,
            reasoning_effort=reasoning_effort,
            prior_sources=gathered[:MAX_PRIOR_SOURCES],
        )
        try:
            answer = answer_in_terminal(engine, request)
        except GroundglassError as exc:  # one bad turn does not end the conversation
            typer.secho(f"error: {exc}", err=True, fg="red")
            failed += 1
            continue
        messages += [ChatMessage("user", text), ChatMessage("assistant", answer.content)]
        gathered = _with_new(answer.sources, gathered)
    if failed and not interactive:  # a script piped in learns that turns failed, as ask's exit code says
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
