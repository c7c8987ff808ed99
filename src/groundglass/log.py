"""Structured logs (structlog) to stderr; level from $GROUNDGLASS_LOG_LEVEL (default WARNING)."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: str | None = None) -> None:
    name = (level or os.environ.get("GROUNDGLASS_LOG_LEVEL") or "WARNING").upper()
    lvl = getattr(logging, name, logging.WARNING)
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.KeyValueRenderer(key_order=["event", "level"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),
    )


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured: a process
    that swaps stderr (a test runner capturing it, a daemon redirecting it) must not leave the logs
    writing to a file that has been closed since."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


get_logger = structlog.get_logger
