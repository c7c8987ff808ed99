"""Logs go to whatever stderr is at the time of writing."""

from __future__ import annotations

import io
import sys

import pytest

from groundglass.log import configure_logging, get_logger


def test_logs_follow_stderr_after_it_was_swapped_and_the_old_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("WARNING")
    get_logger("t").warning("to_the_first")
    first.close()  # a test runner's capture file, or a daemon's old stderr, is gone
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("t").warning("to_the_second")
    assert "to_the_first" not in second.getvalue() and "event='to_the_second'" in second.getvalue()
