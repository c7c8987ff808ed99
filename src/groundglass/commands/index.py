"""``groundglass index add|list|stats|search|remove``: build and manage local indexes.

Thin face over :mod:`groundglass.answer.index`; errors are raised as ``GroundglassError`` and printed
as one line by the root CLI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from groundglass.errors import GroundglassError

index_app = typer.Typer(
    help="Build and manage local indexes: files, folders, websites, builtin:wikipedia.",
    no_args_is_help=True,
)

CONFIG_OPTION = typer.Option(None, "--config", help="Config file (TOML).", dir_okay=False)
INDEX_HELP = "Index name (default: retrieval.index from the config, 'default')."


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@index_app.command("add")
def add(
    sources: list[str] = typer.Argument(..., help="Files, folders, http(s) start URLs, builtin:wikipedia."),
    index: str | None = typer.Option(None, "--index", "-i", help=INDEX_HELP),
    max_pages: int | None = typer.Option(
        None, "--max-pages", min=1, help="Crawl: pages per site (crawl.max_pages)."
    ),
    max_depth: int | None = typer.Option(
        None, "--max-depth", min=0, help="Crawl: link depth (crawl.max_depth)."
    ),
    allow_private: bool = typer.Option(
        False, "--allow-private", help="Crawl: allow private/loopback addresses (fetch.allow_private)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Ingest sources; changed documents are re-indexed, unchanged ones skipped.

    Example: groundglass index add ~/notes report.pdf https://docs.example.org/ --index work
    """
    from groundglass.answer.index import (
        IngestReport,
        LocalIndex,
        NothingIngestedError,
        add_sources,
        list_indexes,
        remove_index,
    )
    from groundglass.config import load_settings

    settings = load_settings(
        config,
        crawl__max_pages=max_pages,
        crawl__max_depth=max_depth,
        fetch__allow_private=True if allow_private else None,
    )
    name = index or settings.retrieval.index
    report = IngestReport()
    existed = name in list_indexes(settings)
    with LocalIndex.open(settings, name, create=True) as idx:
        try:
            add_sources(idx, list(sources), progress=not quiet, report=report)
        except NothingIngestedError:
            if not existed:  # a mistyped path must not leave an empty index behind (index list, the page)
                idx.close()
                remove_index(settings, name)
            raise
        except KeyboardInterrupt:
            typer.echo(
                f"interrupted: {report.added + report.updated} documents saved in index '{name}'; "
                "run the same command again to continue",
                err=True,
            )
            raise
    typer.echo(f"index '{name}': {report.summary()}")
    if report.skipped and quiet:
        for s in report.skipped:
            typer.echo(f"skipped {s.uri}: {s.reason}", err=True)


@index_app.command("list")
def list_(config: Path | None = CONFIG_OPTION) -> None:
    """List the indexes with their document and chunk counts."""
    from groundglass.answer.index import LocalIndex, list_indexes
    from groundglass.config import load_settings

    settings = load_settings(config)
    names = list_indexes(settings)
    if not names:
        typer.echo("no indexes yet; create one with: groundglass index add PATH [--index NAME]", err=True)
        return
    for name in names:
        try:
            with LocalIndex.open(settings, name) as idx:
                st = idx.stats()
            size = _size(st["size_bytes"])
            typer.echo(f"{name}\t{st['documents']} documents\t{st['chunks']} chunks\t{size}")
        except GroundglassError as exc:
            typer.echo(f"{name}\tunusable: {exc.message}")


@index_app.command("stats")
def stats(
    index: str | None = typer.Option(None, "--index", "-i", help=INDEX_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    check: bool = typer.Option(False, "--check", help="Also verify the file's integrity (reads it all)."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Show an index's size, counts, schema and settings."""
    from groundglass.answer.index import LocalIndex
    from groundglass.config import load_settings

    settings = load_settings(config)
    name = index or settings.retrieval.index
    with LocalIndex.open(settings, name) as idx:
        st = idx.stats()
        if check:
            st["integrity"] = idx.integrity()
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    st["size"] = _size(st.pop("size_bytes"))
    st["kinds"] = ", ".join(f"{k}: {v}" for k, v in st["kinds"].items()) or "-"
    for key, value in st.items():
        typer.echo(f"{key:>16}  {value}")


@index_app.command("search")
def search(
    query: str = typer.Argument(..., help="What to look for."),
    index: str | None = typer.Option(None, "--index", "-i", help=INDEX_HELP),
    k: int = typer.Option(5, "-k", "--top-k", min=1, help="How many results."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | bm25 | dense"),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON search_results."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Retrieval only, no model: the passages `ask` would start from."""
    from groundglass.answer.index import LocalIndex
    from groundglass.config import load_settings

    if not query.strip():
        raise GroundglassError("empty query", "pass some words to search for")
    settings = load_settings(config)
    with LocalIndex.open(settings, index or settings.retrieval.index) as idx:
        results = idx.search(query, k, mode=mode)
    if as_json:
        typer.echo(json.dumps([r.search_result() for r in results], indent=2, ensure_ascii=False))
        return
    if not results:
        typer.echo("no results", err=True)
    for n, r in enumerate(results, start=1):
        typer.echo(f"[{n}] {r.score:.3f}  {r.title}  {r.url}\n    {r.snippet}")


@index_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="The index to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Delete an index and everything in it."""
    from groundglass.answer.index import remove_index
    from groundglass.answer.index.schema import index_dir
    from groundglass.config import load_settings
    from groundglass.errors import NotFoundError

    settings = load_settings(config)
    folder = index_dir(settings, name)
    if not folder.is_dir():
        raise NotFoundError(f"index '{name}' does not exist", "see the indexes with: groundglass index list")
    if not yes:
        if not sys.stdin.isatty():
            raise GroundglassError(f"removing index '{name}' needs confirmation", "pass --yes")
        typer.confirm(f"Delete index '{name}' at {folder}?", abort=True)
    remove_index(settings, name)
    typer.echo(f"removed index '{name}'")


def register(app: typer.Typer) -> None:
    """Mount ``groundglass index ...`` on the root app."""
    app.add_typer(index_app, name="index")
