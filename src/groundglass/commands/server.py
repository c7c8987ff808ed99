"""CLI commands: ``serve``, ``keys create|list|revoke``, ``usage report``.

groundglass serve --host 0.0.0.0 --port 8000 --workers 4
groundglass serve --open                     # local use, no keys
groundglass keys create --project research --rpm 60 --tpm 100000   # the key is the last line
groundglass keys list
groundglass keys revoke key_3f2a9c1d0b7e4a55
groundglass usage report --by project,day --start 2025-01-01
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

keys_app = typer.Typer(help="API keys for `groundglass serve`: create, list, revoke.", no_args_is_help=True)
usage_app = typer.Typer(help="The usage and cost ledger of `groundglass serve`.", no_args_is_help=True)

CONFIG_OPT = typer.Option(None, "--config", help="Config file (TOML).")


def serve(
    host: str | None = typer.Option(None, "--host", help="Address to listen on (default: server.host)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port (default: server.port)."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Server processes (default: server.workers). With more than one, use "
        "redis:// rate-limit storage so the limits are shared.",
    ),
    open_mode: bool = typer.Option(False, "--open", help="Serve without API keys (local use only)."),
    config: Path | None = CONFIG_OPT,
) -> None:
    """Run the Perplexity/OpenAI-compatible HTTP API."""
    import uvicorn

    from groundglass.config import load_settings
    from groundglass.errors import GroundglassError
    from groundglass.server.app import CONFIG_ENV, OPEN_ENV
    from groundglass.server.db import get_engine

    settings = load_settings(config)
    s = settings.server
    host, port, workers = host or s.host, port if port is not None else s.port, workers or s.workers
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    if open_mode:
        os.environ[OPEN_ENV] = "1"
    if workers > 1 and s.rate_limit_storage.startswith("memory"):
        typer.echo(
            f"warning: {workers} workers with memory:// rate limits: each process counts on its own, "
            "so a key gets up to N times its limits; set server.rate_limit_storage = "
            '"redis://HOST:6379/0" to share them',
            err=True,
        )
    if (open_mode or s.open) and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: open mode (no API keys) on {host}: anyone who can reach it can use it", err=True
        )
    get_engine(settings)  # create the database (and fail cleanly) before forking workers
    if not (open_mode or s.open) and not _any_key(settings):
        raise GroundglassError(
            "no API keys exist, so every request would get 401",
            "create one with `groundglass keys create --project NAME`, or use --open",
        )
    _check_can_listen(host, port)
    typer.echo(
        f"groundglass API on http://{host}:{port} ({workers} worker{'s' * (workers > 1)}"
        f"{', open mode' if open_mode or s.open else ''}); docs at /docs",
        err=True,
    )
    uvicorn.run(
        "groundglass.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=os.environ.get("GROUNDGLASS_LOG_LEVEL", "warning").lower(),
        access_log=False,
    )


def _check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once before starting, so a port in use (or an address this machine does not
    have) is a clear error naming the flag; uvicorn logged a bare errno line after the banner."""
    import errno
    import socket

    from groundglass.errors import GroundglassError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                fix = f"stop the program using port {port}, or choose another port with --port"
            else:
                fix = "use an address of this machine with --host (127.0.0.1 for local use)"
            raise GroundglassError(f"cannot listen on {host}:{port}: {e.strerror or e}", fix) from None


def _any_key(settings: object) -> bool:
    from groundglass.server.auth import KeyStore
    from groundglass.server.db import get_engine

    return bool(KeyStore(get_engine(settings), settings).list(include_revoked=False))  # type: ignore[arg-type]


def _store(config: Path | None):  # type: ignore[no-untyped-def]
    from groundglass.config import load_settings
    from groundglass.server.auth import KeyStore
    from groundglass.server.db import get_engine

    settings = load_settings(config)
    return KeyStore(get_engine(settings), settings)


@keys_app.command("create")
def keys_create(
    project: str = typer.Option(..., "--project", help="Project the key's usage is billed to."),
    rpm: int | None = typer.Option(None, "--rpm", help="Requests per minute (default: server.default_rpm)."),
    tpm: int | None = typer.Option(None, "--tpm", help="Tokens per minute (default: server.default_tpm)."),
    admin: bool = typer.Option(False, "--admin", help="May read the usage of every project."),
    config: Path | None = CONFIG_OPT,
) -> None:
    """Create a key. It is shown once, alone on the last line; only its hash is stored."""
    secret, record = _store(config).create(project, rpm=rpm, tpm=tpm, admin=admin)
    typer.echo(
        f"created {record['id']} for project {record['project']!r} (rpm {record['rpm']}, "
        f"tpm {record['tpm']}{', admin' if admin else ''}). Store the key now: it is not shown again.",
        err=True,
    )
    typer.echo(secret)


@keys_app.command("list")
def keys_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."), config: Path | None = CONFIG_OPT
) -> None:
    """List keys (ids, projects, limits, state); secrets are never shown."""
    import datetime as dt

    rows = _store(config).list()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Column, Table

    # the id is what `keys revoke` takes: never shortened, however narrow the terminal (or a pipe's 80)
    id_width = max((len(r["id"]) for r in rows), default=2)
    table = Table(
        Column("id", no_wrap=True, min_width=id_width),
        *("prefix", "project", "rpm", "tpm", "admin", "created (UTC)", "state"),
    )
    for r in rows:
        created = dt.datetime.fromtimestamp(r["created_at"], dt.UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            r["id"],
            r["prefix"] + "…",
            r["project"],
            str(r["rpm"]),
            str(r["tpm"]),
            "yes" if r["admin"] else "",
            created,
            "revoked" if r["revoked_at"] else "active",
        )
    _print_table(table)


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="The key id (key_...) or the key itself."),
    config: Path | None = CONFIG_OPT,
) -> None:
    """Revoke a key: its next request gets 401."""
    record = _store(config).revoke(key)
    typer.echo(f"revoked {record['id']} (project {record['project']!r})")


@usage_app.command("report")
def usage_report(
    by: str = typer.Option("day,model", "--by", help="Group by any of: key, project, model, day, endpoint."),
    start: str | None = typer.Option(None, "--start", help="First UTC day, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--end", help="Last UTC day, YYYY-MM-DD (inclusive)."),
    project: str | None = typer.Option(None, "--project", help="Only this project."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    config: Path | None = CONFIG_OPT,
) -> None:
    """Requests, tokens, searches and cost from the ledger, grouped."""
    from groundglass.config import load_settings
    from groundglass.server.db import get_engine
    from groundglass.server.usage import Ledger

    groups = [g.strip() for g in by.split(",") if g.strip()]
    rows = Ledger(get_engine(load_settings(config))).report(groups, project=project, start=start, end=end)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no usage recorded" + (" in that range" if start or end or project else ""), err=True)
        return
    from rich.table import Table

    cols = [
        *groups,
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "num_search_queries",
        # DreamBooth's counts, where a row has any
        *[c for c in ("training_steps", "device_seconds", "images") if any(r[c] for r in rows)],
        "total_cost",
    ]
    table = Table(*cols)
    for r in rows:
        table.add_row(*[f"{r[c]:.6f}" if c == "total_cost" else str(r[c]) for c in cols])
    if rows:
        table.add_section()
        totals = {c: sum(r[c] for r in rows) for c in cols[len(groups) :]}
        table.add_row(
            *(["total"] + [""] * (len(groups) - 1) if groups else []),
            *[f"{totals[c]:.6f}" if c == "total_cost" else str(totals[c]) for c in cols[len(groups) :]],
        )
    _print_table(table)


def _print_table(table: Any) -> None:
    """Print a rich table; into a pipe or a file, at its full width: rich would otherwise cut cells
    (costs, ids, project names) to fit 80 columns, which nobody reading the file can undo."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console()
    if not console.is_terminal:
        unbounded = console.options.update_width(10_000)
        console = Console(width=max(console.width, Measurement.get(console, unbounded, table).maximum))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Mount this group's commands on the root app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(usage_app, name="usage")
