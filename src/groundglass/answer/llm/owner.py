"""One thread that owns a native resource and runs every call that touches it, in order.

llama.cpp's objects are not thread-safe: a context evaluated from two threads at once, a tokenizer
used while another thread frees the model, or a model freed by interpreter shutdown while a worker
thread is still inside ``llama_decode`` corrupt memory and end the process with SIGSEGV, with no
Python traceback. An :class:`Owner` makes that impossible by construction: the resource is created,
used and freed on the owner thread only, and other threads hand it work through a queue.

Two kinds of work:

- :meth:`Owner.call`: a short call (tokenize, detokenize, read a counter). It runs between two steps
  of the current task, so a tokenizer call never waits for a whole generation.
- :meth:`Owner.submit`: a task, written as a generator that yields between steps (one generated
  token, one batch of a prefill). Tasks run one after the other, never interleaved with each other,
  because each one leaves the context in a state the next one builds on. The task's return value is
  the result of the returned ``Future``.

:meth:`Owner.stop` fails the queued tasks, asks the running one to stop at its next step (its
``cancel`` event), runs the resource's ``free`` on the owner thread, and waits for the thread to end.
Owners still running when the interpreter exits are stopped by an ``atexit`` handler, so the model
is never freed under a running evaluation.
"""

from __future__ import annotations

import atexit
import threading
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from groundglass.errors import ModelError
from groundglass.log import get_logger

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Steps = Generator[None, None, T]  # a task: yields between steps, returns its result
EXIT_WAIT_S = 120.0  # at interpreter exit: the longest wait for the running step (one prompt batch)


@dataclass
class _Task:
    steps: Callable[[], Steps[Any]]
    future: Future[Any]
    cancel: threading.Event = field(default_factory=threading.Event)


class Owner(Generic[R]):
    """The thread that owns the resource ``create()`` returns (see the module docstring)."""

    def __init__(self, name: str, create: Callable[[], R], free: Callable[[R], None]) -> None:
        self.name = name
        self._free = free
        self._cv = threading.Condition()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._tasks: deque[_Task] = deque()
        self._current: _Task | None = None
        self._stopping = False
        self._resource: R | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        _running.add(self)
        self._thread.start()
        try:
            self._resource = self.call(create)
        except BaseException:
            self.stop()
            raise

    # --- what other threads call ----------------------------------------------------------------------

    @property
    def resource(self) -> R:
        """The resource, for code running on the owner thread (a call or a task) only."""
        assert threading.current_thread() is self._thread, "the resource is used on its owner thread only"
        if self._resource is None:
            raise ModelError(f"{self.name} is closed", "load the model again")
        return self._resource

    def on_owner(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the owner thread (between two steps of the running task) and return its result."""
        if self.on_owner():
            return fn()
        future: Future[T] = Future()
        with self._cv:
            self._check_open()
            self._calls.append((fn, future))
            self._cv.notify()
        return future.result()

    def submit(self, steps: Callable[[threading.Event], Steps[T]]) -> tuple[Future[T], threading.Event]:
        """Queue a task; ``steps(cancel)`` runs on the owner thread after the tasks queued before it.
        Returns its future and its cancel event (set it to make the task stop at its next step; a task
        not yet started is then skipped)."""
        if self.on_owner():
            raise RuntimeError("a task cannot wait for another task on the owner thread")
        future: Future[T] = Future()
        task = _Task(steps=lambda: steps(task.cancel), future=future)
        with self._cv:
            self._check_open()
            self._tasks.append(task)
            self._cv.notify()
        return future, task.cancel

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Fail queued work, stop the running task at its next step, free the resource on the owner
        thread, and (``wait``) wait up to ``timeout`` seconds for the thread to end. Safe to call twice."""
        with self._cv:
            self._stopping = True
            if self._current is not None:
                self._current.cancel.set()
            self._cv.notify()
        if wait and not self.on_owner():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("owner_still_running", owner=self.name, waited_s=timeout)

    @property
    def stopping(self) -> bool:
        """stop() was called: the running task was told to end early, and nothing new will run."""
        return self._stopping

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _check_open(self) -> None:
        if self._stopping:
            raise ModelError(f"{self.name} is closed", "load the model again")

    # --- the owner thread -----------------------------------------------------------------------------

    def _loop(self) -> None:
        running: Steps[Any] | None = None
        try:
            while True:
                with self._cv:
                    while not self._calls and running is None and not self._tasks and not self._stopping:
                        self._cv.wait()
                    calls = list(self._calls)
                    self._calls.clear()
                    if self._stopping:
                        dropped = list(self._tasks)
                        self._tasks.clear()
                    else:
                        dropped = []
                    if running is None and self._tasks:
                        self._current = self._tasks.popleft()
                    stopping = self._stopping
                for fn, future in calls:
                    self._run_call(fn, future)
                for task in dropped:
                    task.future.set_exception(ModelError(f"{self.name} is closed", "load the model again"))
                if running is None and self._current is not None:
                    if not self._current.future.set_running_or_notify_cancel():
                        self._current = None
                        continue
                    if stopping:
                        self._current.cancel.set()
                    running = self._start(self._current)
                if running is not None:
                    running = self._step(running)
                elif stopping:
                    return
        finally:
            self._release()

    def _start(self, task: _Task) -> Steps[Any] | None:
        try:
            return task.steps()
        except BaseException as exc:
            task.future.set_exception(exc)
            self._current = None
            return None

    def _step(self, running: Steps[Any]) -> Steps[Any] | None:
        """Advance the running task by one step; None when it has finished."""
        task = self._current
        assert task is not None
        try:
            next(running)
            return running
        except StopIteration as done:
            task.future.set_result(done.value)
        except BaseException as exc:
            task.future.set_exception(exc)
        self._current = None
        return None

    @staticmethod
    def _run_call(fn: Callable[[], Any], future: Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    def _release(self) -> None:
        with self._cv:
            self._stopping = True
            calls = list(self._calls)
            self._calls.clear()
            tasks = list(self._tasks)
            self._tasks.clear()
        closed = ModelError(f"{self.name} is closed", "load the model again")
        for _, future in calls:
            if future.set_running_or_notify_cancel():
                future.set_exception(closed)
        for task in tasks:
            task.future.set_exception(closed)
        resource, self._resource = self._resource, None
        if resource is not None:
            try:
                self._free(resource)
            except Exception as exc:  # freeing is best effort; the process may be exiting
                log.warning("owner_free_failed", owner=self.name, error=repr(exc))
        _running.discard(self)


_running: set[Owner[Any]] = set()


@atexit.register
def _stop_all_at_exit() -> None:
    """Interpreter exit: stop every owner (and free its resource on its own thread) while the
    interpreter still works, instead of letting finalization free it under a running step."""
    for owner in list(_running):
        owner.stop(timeout=EXIT_WAIT_S)
