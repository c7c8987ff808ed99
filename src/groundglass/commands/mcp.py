"""``groundglass mcp``: the answer engine as MCP tools (ask, search, index_search) for desktop assistants
and agent frameworks, over stdio (the default: the client starts this command) or streamable HTTP.

groundglass mcp                                          # stdio
groundglass mcp --transport streamable-http --port 8001  # http://127.0.0.1:8001/mcp
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer


def mcp(
    transport: str = typer.Option("stdio", "--transport", "-t", help="stdio or streamable-http."),
    host: str = typer.Option("127.0.0.1", "--host", help="streamable-http: address to listen on."),
    port: int = typer.Option(
        8001, "--port", min=1, max=65535, help="streamable-http: port (the endpoint is /mcp)."
    ),
    config: Path | None = typer.Option(None, "--config", help="Config file (TOML)."),
) -> None:
    """Serve ask, search and index_search as MCP tools."""
    from groundglass.config import load_settings
    from groundglass.errors import GroundglassError
    from groundglass.mcp_server import build_server

    if transport not in ("stdio", "streamable-http"):
        raise GroundglassError(f"unknown transport {transport!r}", "use --transport stdio or streamable-http")
    server = build_server(load_settings(config))
    if transport == "stdio":
        server.run("stdio")  # stdout carries the protocol: logs go to stderr
    else:
        chosen: Literal["streamable-http"] = "streamable-http"
        server.run(chosen, host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
