"""A command that ends while the embedder is still loading exits with its own status, not SIGABRT.

The engine loads MiniLM (ONNX Runtime) on a background thread while the model loads. When the
command ended within a second or two (a search with no results, an error), the interpreter
finalised with that thread still inside ONNX Runtime; a daemon thread is killed there as it takes the
GIL back, the unwinding crosses C++ frames, and the process died with "terminate called without an
active exception" (exit 134) instead of printing its error and exiting 2.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys, time
from groundglass.answer import engine
engine._start_loading_embedder()
time.sleep(float(sys.argv[1]))
sys.exit(2)
"""


@pytest.mark.parametrize("delay_s", [0.5, 1.0, 1.5, 2.0])
def test_exit_while_the_embedder_loads_keeps_the_exit_status(delay_s: float) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(delay_s)], capture_output=True, text=True, env=env, timeout=300
    )
    assert "terminate called" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])


LOADED = """
import sys
from groundglass.answer.embeddings import get_embedder
get_embedder()  # returns with its multi-thread session still being made beside it
sys.exit(3)
"""


def test_exit_right_after_the_embedder_is_ready_keeps_the_exit_status() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, env=env, timeout=300
    )
    assert "terminate called" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
