"""One entry point: ``groundglass ask|chat|index|config|demo|serve|keys|usage|dreambooth ...``.

This module only mounts the command groups in ``groundglass.commands`` and turns a
:class:`~groundglass.errors.GroundglassError` into one line on stderr and a non-zero exit.
Heavy imports (torch, llama.cpp) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys

import typer

from groundglass.errors import GroundglassError

app = typer.Typer(
    name="groundglass",
    help="Grounded answers with citations, and DreamBooth fine-tuning, on your own hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _mount() -> None:
    from groundglass.commands import answer, chat, config_cmd, dreambooth, index, mcp, server

    for module in (answer, chat, index, config_cmd, server, mcp, dreambooth):
        module.register(app)


_mount()


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def report_native_crashes() -> None:
    """A crash in native code (llama.cpp, onnxruntime, torch) prints the Python stack of every thread
    to stderr before the process dies, so a rare segfault comes with where it happened. Skipped when
    stderr is not a real file (the CLI called in-process under a capturing test runner)."""
    import contextlib
    import faulthandler

    if faulthandler.is_enabled():
        return
    with contextlib.suppress(AttributeError, ValueError, OSError):  # io.UnsupportedOperation: OSError
        faulthandler.enable(file=sys.stderr, all_threads=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: returns on success (so tests can call it in-process), exits non-zero on failure.

    Usage errors are typer's own message and exit code 2; a GroundglassError prints one line, exit 2.
    """
    from groundglass.log import configure_logging

    configure_logging()
    report_native_crashes()
    try:
        rv = app(args=argv, standalone_mode=False)
    except GroundglassError as exc:
        fail(str(exc), 2)
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", 130)
    except Exception as exc:
        # typer vendors its own copy of click: recognise its usage errors by shape, not by class.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
    if isinstance(rv, int) and rv != 0:
        raise SystemExit(rv)


if __name__ == "__main__":
    main()
