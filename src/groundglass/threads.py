"""Threads that may run native code: ONNX Runtime (MiniLM), torch (DreamBooth), llama.cpp.

    native_thread(target, "warm-up").start()

Such a thread is never a daemon, so the interpreter waits for it at exit. A daemon thread still
inside ONNX Runtime or torch when the interpreter finalises is killed as it takes the GIL back, and
that unwinds through C++ frames: std::terminate, SIGABRT ("terminate called without an active
exception", exit 134). ``groundglass ask`` died that way when it ended within a second or two of
starting (a search with no results, an error) while MiniLM was still loading
(``tests/answer/test_exit_with_threads.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def native_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """A thread (not started) that the interpreter waits for at exit."""
    return threading.Thread(target=target, name=name, daemon=False)
