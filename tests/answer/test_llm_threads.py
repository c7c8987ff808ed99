"""The llama.cpp runtime used from many threads at once, as the engine and the server use it.

The engine pre-fills the prompt prefix in a background thread while the search counts tokens; the
server runs requests side by side and drops streams whose clients went away; a process can end (or
close the model) while a worker thread is still generating. Any llama.cpp call made from two threads
at once, or after the model was freed, ends the process with SIGSEGV and no traceback, so the
hammering runs in a subprocess and the test asserts that it exits cleanly with correct outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.errors import ModelError

HAMMER = textwrap.dedent("""
    import random
    import sys
    import threading
    import time
    from pathlib import Path

    from groundglass.answer.llm.base import ChatMessage, Completion
    from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
    from groundglass.errors import ModelError

    path, seconds = Path(sys.argv[1]), float(sys.argv[2])
    SYSTEM = ChatMessage("system", "You are a helpful assistant. Answer in one short sentence.")
    QUESTION = ChatMessage("user", "What is the capital of France?")
    COUNT = ChatMessage("user", "Count from 1 to 50, separated by commas.")
    TEXT = "The lighthouse keeper polished the great lens once more. " * 60
    SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


    def hammer(llm, deadline, tallies, errors, done=None):
        done = done or threading.Event()
        n_text = llm.count_tokens(TEXT)
        held = []  # streams left open, dropped later from another thread (a client that went away)

        def loop(name, step):
            def run():
                rng = random.Random(name)
                try:
                    while time.monotonic() < deadline and not done.is_set():
                        step(rng)
                        tallies[name] = tallies.get(name, 0) + 1
                except ModelError as exc:
                    if "closed" not in str(exc):
                        errors.append(f"{name}: {exc!r}")
                except BaseException as exc:
                    errors.append(f"{name}: {exc!r}")
            return threading.Thread(target=run, name=name, daemon=True)

        def warm(rng):
            llm.warm([ChatMessage("system", f"You are assistant {rng.randrange(5)}. " + "Be brief. " * 30),
                      ChatMessage("user", "Which lighthouse is the oldest?")])

        def count(rng):
            assert llm.count_tokens(TEXT) == n_text, "the tokenizer gave another count"
            llm.prompt_tokens([SYSTEM, QUESTION])

        def answer(rng):
            completion = Completion()
            text = "".join(llm.stream([SYSTEM, QUESTION], max_tokens=12, temperature=0.0,
                                      completion=completion))
            # what the runtime knew of this call, for a failure's message: a wrong answer at temperature 0
            # means a state one task left behind was read by the next
            seen = (text, completion.finish_reason, completion.cached_tokens, llm.reused_tokens)
            assert "Paris" in text, seen
            assert completion.completion_tokens == llm.count_tokens(text)

        def abandon(rng):
            stream = llm.stream([COUNT], max_tokens=24, temperature=0.0)
            next(stream)
            if rng.random() < 0.5:
                held.append(stream)  # left un-closed: another thread drops it later
            else:
                stream.close()

        def drop(rng):
            if held:
                held.pop(0)
            time.sleep(0.05)

        def structured(rng):
            assert isinstance(llm.complete_json([SYSTEM, QUESTION], SCHEMA, max_tokens=16), dict)

        threads = [loop(n, f) for n, f in (("warm", warm), ("count", count), ("answer", answer),
                                           ("abandon", abandon), ("drop", drop), ("json", structured))]
        for t in threads:
            t.start()
        return threads, held


    errors, tallies = [], {}
    llm = LlamaCppLLM(path, context_length=1024, threads=1)
    threads, held = hammer(llm, time.monotonic() + seconds, tallies, errors)
    for t in threads:
        t.join()
    print("tallies", sorted(tallies.items()), flush=True)
    assert not errors, errors
    assert all(tallies.get(n, 0) >= 1 for n in ("warm", "count", "answer", "abandon", "json")), tallies

    # close() while every thread is still calling: they must get "closed" errors, not a crash.
    closed = threading.Event()
    threads, held = hammer(llm, time.monotonic() + 60, {}, errors, closed)
    time.sleep(1.5)
    llm.close()
    closed.set()  # (the threads that call the model stop on its "closed" error)
    for t in threads:
        t.join(30)
    hanging = [t.name for t in threads if t.is_alive()]
    if hanging:
        import faulthandler
        faulthandler.dump_traceback()
    assert not hanging, f"threads hang after close(): {hanging}"
    assert not errors, errors
    held.clear()

    # Interpreter exit while daemon threads are generating and pre-filling on another model.
    other = LlamaCppLLM(path, context_length=1024, threads=1)
    hammer(other, time.monotonic() + 60, {}, [])
    time.sleep(1.5)
    print("HAMMER-OK", flush=True)
""")


def run_hammer(gguf: Path, tmp_path: Path, seconds: float) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "hammer.py"
    script.write_text(HAMMER)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(gguf), str(seconds)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_many_threads_and_close_and_exit_do_not_crash(tiny_gguf: Path, tmp_path: Path) -> None:
    proc = run_hammer(tiny_gguf, tmp_path, seconds=12)
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, detail
    assert "HAMMER-OK" in proc.stdout, detail
    assert "Fatal Python error" not in proc.stderr, detail


# --- the invariant itself: llama.cpp is only ever entered on the owner thread -----------------------------


@pytest.fixture
def own_tiny(tiny_gguf: Path):
    llm = LlamaCppLLM(tiny_gguf, context_length=1024, threads=1)
    yield llm
    llm.close()


def test_every_llama_call_runs_on_the_owner_thread(
    own_tiny: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    callers: set[str] = set()
    for name in (
        "llama_decode",
        "llama_tokenize",
        "llama_token_to_piece",
        "llama_state_seq_get_data",
        "llama_state_seq_set_data",
    ):
        real = getattr(llama_cpp, name)

        def spy(*args, _real=real, **kwargs):
            callers.add(threading.current_thread().name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(llama_cpp, name, spy)
        monkeypatch.setattr(llama_cpp.llama_cpp, name, spy, raising=False)
    llm = own_tiny
    llm.snapshot_min_tokens = 16
    system = ChatMessage("system", "You are a helpful assistant. " + "Be brief. " * 10)
    warmer = threading.Thread(target=llm.warm, args=([system],), name="warmer")
    warmer.start()
    counts = [llm.count_tokens("lighthouse keepers " * i) for i in range(1, 20)]
    warmer.join()
    text = "".join(llm.stream([system, ChatMessage("user", "Say hello.")], max_tokens=6, temperature=0.0))
    "".join(llm.stream([ChatMessage("user", "Name a colour.")], max_tokens=4, temperature=0.0))
    assert text and counts == sorted(counts)
    assert callers, "the spies saw no llama.cpp call: the test no longer watches the right functions"
    assert callers == {f"llama-{llm.name}"}, callers


def test_a_dropped_stream_frees_the_model_for_the_next_call(own_tiny: LlamaCppLLM) -> None:
    stream = own_tiny.stream([ChatMessage("user", "Count from 1 to 100.")], max_tokens=200, temperature=0.0)
    first = next(stream)
    assert first
    del stream  # a client that went away: the generation stops at its next token
    done = threading.Event()

    def ask() -> None:
        "".join(own_tiny.stream([ChatMessage("user", "Say hi.")], max_tokens=3, temperature=0.0))
        done.set()

    threading.Thread(target=ask, daemon=True).start()
    assert done.wait(30), "the next generation waited for the dropped one"


def test_cancel_stops_a_long_prompt_in_its_prefill(tiny_gguf: Path) -> None:
    """A client that leaves while a long prompt is still being read: the model stops at its next batch
    instead of reading the whole prompt and generating an answer nobody will see."""
    llm = LlamaCppLLM(tiny_gguf, context_length=4096, threads=1)
    try:
        prompt = [ChatMessage("user", "The lighthouse keeper polished the great lens once more. " * 300)]
        total = len(llm.prompt_tokens(prompt))
        batch = llm._owner.call(lambda: llm._llama.n_batch)
        assert total > 5 * batch  # several batches to stop between
        cancel = threading.Event()
        cancel.set()
        stream = llm.stream(prompt, max_tokens=20, temperature=0.0, completion=Completion(), cancel=cancel)
        pieces = list(stream)
        read = llm._owner.call(lambda: llm._llama.n_tokens)
        assert pieces == [] and read < total - 2 * batch, (read, total)
        # the next call is served normally
        assert "".join(llm.stream([ChatMessage("user", "Say hi.")], max_tokens=3, temperature=0.0))
    finally:
        llm.close()


def test_a_stream_cut_by_close_is_an_error_not_a_shorter_answer(tiny_gguf: Path) -> None:
    """close() while an answer streams: the words already shown stay shown, but the stream ends in the
    model's "closed" error, not as if the model had finished (the thread hammer's close phase saw
    "The capital of" end with finish_reason "stop")."""
    from groundglass.errors import ModelError

    llm = LlamaCppLLM(tiny_gguf, context_length=1024, threads=1)
    completion = Completion()
    stream = llm.stream(
        [ChatMessage("user", "Count from 1 to 100, separated by commas.")],
        max_tokens=200,
        temperature=0.0,
        completion=completion,
    )
    pieces = [next(stream)]
    llm.close()  # the generation stops at its next token
    with pytest.raises(ModelError, match="closed"):
        pieces += list(stream)
    assert pieces[0] and len(pieces) < 100


def test_calls_after_close_are_a_clear_error(tiny_gguf: Path) -> None:
    llm = LlamaCppLLM(tiny_gguf, context_length=512, threads=1)
    llm.close()
    with pytest.raises(ModelError, match="closed"):
        llm.count_tokens("hello")
    with pytest.raises(ModelError, match="closed"):
        list(llm.stream([ChatMessage("user", "hi")], max_tokens=2))


# --- the owner thread on a plain resource: ordering, interleaving, stopping --------------------------------


def test_owner_runs_calls_between_task_steps_and_tasks_in_order() -> None:
    from groundglass.answer.llm.owner import Owner

    log: list[str] = []
    freed = threading.Event()
    owner: Owner[list[str]] = Owner("test-owner", lambda: log, lambda _: freed.set())
    step_started, release = threading.Event(), threading.Event()

    def long_task(cancel: threading.Event):
        for i in range(3):
            owner.resource.append(f"step {i}")
            step_started.set()
            release.wait(5)
            yield
        return "long done"

    def short_task(cancel: threading.Event):
        owner.resource.append("short")
        return "short done"
        yield  # a generator

    first, _ = owner.submit(long_task)
    second, _ = owner.submit(short_task)
    assert step_started.wait(5)
    caller = threading.Thread(target=lambda: owner.call(lambda: owner.resource.append("call")))
    caller.start()
    release.set()
    caller.join(5)
    assert first.result(5) == "long done" and second.result(5) == "short done"
    assert log.index("call") < log.index("step 2"), log  # the call did not wait for the whole task
    assert log.index("step 2") < log.index("short"), log  # tasks never interleave
    owner.stop()
    assert freed.is_set() and not owner.alive
    with pytest.raises(ModelError, match="closed"):
        owner.call(lambda: None)


def test_owner_stop_cancels_the_running_task_and_fails_queued_ones() -> None:
    from groundglass.answer.llm.owner import Owner

    owner: Owner[object] = Owner("test-owner", object, lambda _: None)

    started = threading.Event()

    def endless(cancel: threading.Event):
        steps = 0
        while not cancel.is_set():
            steps += 1
            started.set()
            yield
        return steps

    running, _ = owner.submit(endless)
    queued, _ = owner.submit(endless)
    assert started.wait(5)
    owner.stop(timeout=10)
    assert not owner.alive
    assert running.result(1) >= 1
    with pytest.raises(ModelError, match="closed"):
        queued.result(1)
