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
    from groundglass.commands import answer, config_cmd, dreambooth, index, server

    for module in (answer, index, config_cmd, server, dreambooth):
        module.register(app)


_mount()


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    from groundglass.log import configure_logging

    configure_logging()
    try:
        app(args=argv, standalone_mode=False)
    except GroundglassError as exc:
        fail(str(exc), 2)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        fail("aborted", 1)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise


if __name__ == "__main__":
    main()
