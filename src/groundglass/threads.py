"""Threads that may run native code: ONNX Runtime (MiniLM), torch (DreamBooth), llama.cpp; and the
lock that HTML parsing (lxml, trafilatura) takes in them.

    native_thread(target, "warm-up").start()
    with HTML_LOCK:
        tree = lxml.html.fromstring(page)

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


# Held while lxml parses a page or trafilatura extracts one. Pages are read in worker threads, several
# at once, and trafilatura's extract() run concurrently in threads crashes the process now and then,
# in lxml's C code, with SIGSEGV or SIGABRT ("munmap_chunk(): invalid pointer") and no traceback
# (trafilatura issues 840 and 925, still open for 2.2 and later). The docs eval saw it: one
# `groundglass ask` in about fifty died that way, 4 to 6 s in, while its pages were being read. The
# parse is mostly Python under the GIL, so one page at a time costs little.
HTML_LOCK = threading.Lock()
