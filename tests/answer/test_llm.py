"""Both LLM runtimes on real models and real servers: the tiny GGUF in-process through llama.cpp, and the
OpenAI-compatible runtime against llama-cpp-python's own server on 127.0.0.1 (plus loopback servers
that misbehave on purpose)."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.load import ModelSpec, load_llm, parse_model_spec
from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM
from groundglass.config import Settings, load_settings
from groundglass.errors import GroundglassError, ModelError

SYSTEM = ChatMessage("system", "You are a helpful assistant. Answer in one short sentence.")
QUESTION = ChatMessage("user", "What is the capital of France?")
COUNT = ChatMessage("user", "Count from 1 to 30, separated by commas.")


@pytest.fixture
def llm_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GROUNDGLASS_HOME", str(tmp_path / "home"))
    for var in ("GROUNDGLASS_CONFIG", "GROUNDGLASS_MODEL", "GROUNDGLASS_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    # One thread: with two, llama.cpp's spinning thread barrier collapses (3-6x slower) whenever other
    # processes compete for the two cores, as they do when test files run side by side.
    return load_settings(llm__context_length=2048, llm__threads=1)


@pytest.fixture
def tiny(llm_settings: Settings) -> LlamaCppLLM:
    llm = load_llm("tiny", llm_settings)
    assert isinstance(llm, LlamaCppLLM)
    return llm


def with_llm(settings: Settings, **updates: object) -> Settings:
    """A copy of ``settings`` with some ``llm`` settings changed."""
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=updates)})


def collect(stream: Iterator[str]) -> tuple[list[str], str]:
    pieces = list(stream)
    return pieces, "".join(pieces)


# --- spec parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("default", ModelSpec(kind="embedded", name="default")),
        ("tiny", ModelSpec(kind="embedded", name="tiny")),
        ("fast", ModelSpec(kind="embedded", name="fast")),
        ("/models/x.gguf", ModelSpec(kind="gguf", path=Path("/models/x.gguf"))),
        (
            "openai:qwen2.5@http://127.0.0.1:11434/v1",
            ModelSpec(kind="openai", model="qwen2.5", base_url="http://127.0.0.1:11434/v1"),
        ),
        (
            "openai:qwen2.5:7b@https://h.example/v1/",
            ModelSpec(kind="openai", model="qwen2.5:7b", base_url="https://h.example/v1"),
        ),
        (
            "openai:gpt-4o-mini",
            ModelSpec(kind="openai", model="gpt-4o-mini", base_url="https://api.openai.com/v1"),
        ),
    ],
)
def test_parse_model_spec(spec: str, expected: ModelSpec) -> None:
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec", ["gpt4", "", "openai:@http://x/v1", "openai:m@ftp://x", "models/llama.bin"])
def test_bad_specs_list_the_valid_forms(spec: str) -> None:
    with pytest.raises(GroundglassError) as err:
        parse_model_spec(spec)
    text = str(err.value)
    assert "openai:" in text and ("gguf" in text or "http" in text)


def test_load_llm_without_spec_uses_the_setting(llm_settings: Settings) -> None:
    settings = with_llm(llm_settings, model="openai:some-model@http://127.0.0.1:9/v1", timeout_s=7.0)
    llm = load_llm(None, settings)
    assert isinstance(llm, OpenAICompatibleLLM)
    assert (llm.name, llm.base_url, llm.timeout_s) == ("some-model", "http://127.0.0.1:9/v1", 7.0)
    assert load_llm(None, settings) is llm, "one client (and connection pool) per endpoint"
    assert load_llm(None, with_llm(settings, timeout_s=8.0)) is not llm


# --- llama.cpp runtime -----------------------------------------------------------------------------------


def test_tiny_model_streams_tokens_and_counts_them(tiny: LlamaCppLLM) -> None:
    completion = Completion()
    pieces, text = collect(
        tiny.stream([SYSTEM, QUESTION], max_tokens=24, temperature=0.0, completion=completion)
    )
    assert len(pieces) > 1, "expected the answer in several streamed pieces"
    assert "Paris" in text
    assert completion.prompt_tokens == len(tiny.prompt_tokens([SYSTEM, QUESTION]))
    assert 0 < completion.completion_tokens <= 24
    assert completion.completion_tokens == tiny.count_tokens(text)
    assert completion.finish_reason == "stop"
    assert tiny.name == "SmolLM2-135M-Instruct.Q4_1" and tiny.context_length == 2048


def test_max_tokens_ends_with_length(tiny: LlamaCppLLM) -> None:
    completion = Completion()
    _, text = collect(tiny.stream([COUNT], max_tokens=6, temperature=0.0, completion=completion))
    assert completion.finish_reason == "length"
    assert completion.completion_tokens == 6
    assert text.strip()


def test_stop_sequence_cuts_the_output(tiny: LlamaCppLLM) -> None:
    _, full = collect(tiny.stream([COUNT], max_tokens=20, temperature=0.0))
    assert "3" in full, full
    completion = Completion()
    _, cut = collect(tiny.stream([COUNT], max_tokens=20, temperature=0.0, stop=["3"], completion=completion))
    assert "3" not in cut and full.startswith(cut) and len(cut) < len(full)
    assert completion.finish_reason == "stop"


def test_greedy_answers_take_drafts_from_the_prompt(tiny: LlamaCppLLM, llm_settings: Settings) -> None:
    """A sentence copied from the prompt is generated several tokens a step (the drafts the prompt
    holds are checked in one batch); sampling, or the setting off, decodes one token a step."""
    sentence = "The default setting for SQLITE_MAX_COLUMN is 2000, and it can be raised to 32767."
    copy = [ChatMessage("user", f"Repeat this sentence exactly: {sentence}")]
    drafted = Completion()
    _, text = collect(tiny.stream(copy, max_tokens=40, temperature=0.0, completion=drafted))
    assert "SQLITE_MAX_COLUMN is 2000" in text, text
    assert drafted.decode_steps * 2 <= drafted.completion_tokens, (drafted.decode_steps, text)
    again = Completion()
    assert collect(tiny.stream(copy, max_tokens=40, temperature=0.0, completion=again))[1] == text
    assert again.cached_tokens == again.prompt_tokens, "the prompt stays cached after a drafted answer"
    plain = load_llm("tiny", with_llm(llm_settings, lookup_decoding=False))
    assert plain is not tiny
    one_by_one = Completion()
    _, plain_text = collect(plain.stream(copy, max_tokens=40, temperature=0.0, completion=one_by_one))
    assert "SQLITE_MAX_COLUMN is 2000" in plain_text
    assert one_by_one.decode_steps >= one_by_one.completion_tokens
    sampled = Completion()
    collect(tiny.stream(copy, max_tokens=12, temperature=0.7, completion=sampled))
    assert sampled.decode_steps >= sampled.completion_tokens


def test_load_llm_reuses_the_loaded_model(tiny: LlamaCppLLM, llm_settings: Settings) -> None:
    assert load_llm("tiny", llm_settings) is tiny
    assert load_llm(str(tiny.path), llm_settings) is tiny
    smaller = load_llm("tiny", with_llm(llm_settings, context_length=1024))
    assert smaller is not tiny and smaller.context_length == 1024


def test_warm_prefix_is_reused_and_changes_nothing(tiny: LlamaCppLLM) -> None:
    messages = [SYSTEM, QUESTION]
    _, reference = collect(tiny.stream(messages, max_tokens=16, temperature=0.0))
    # Fill the cache with an unrelated conversation, then pre-fill our system prompt.
    collect(tiny.stream([ChatMessage("user", "Name a colour.")], max_tokens=4, temperature=0.0))
    evaluated = tiny.warm([SYSTEM])
    assert evaluated > 0
    assert tiny.cached_tokens == len(tiny.prompt_tokens([SYSTEM], add_generation_prompt=False))
    assert tiny.warm([SYSTEM]) == 0, "a second warm of the same prefix must be free"
    _, after = collect(tiny.stream(messages, max_tokens=16, temperature=0.0))
    assert after == reference


def test_conversation_comes_back_after_an_unrelated_call(tiny: LlamaCppLLM) -> None:
    """Between two turns of a chat the engine makes other calls (the follow-up's rewrite); the conversation's
    KV cells are saved when such a call evicts them and restored for the next turn, which then only
    evaluates what is new, and answers exactly as a cold cache would."""
    llm = LlamaCppLLM(tiny.path, context_length=2048, threads=1, snapshot_min_tokens=16)
    first = [SYSTEM, QUESTION]
    _, reply = collect(llm.stream(first, max_tokens=12, temperature=0.0))
    other = [
        ChatMessage("system", "Rewrite the user's question as a search query."),
        ChatMessage("user", "and how many people live there?"),
    ]
    collect(llm.stream(other, max_tokens=8, temperature=0.0))
    assert llm.reused_tokens < 8, "the rewrite shares nothing with the conversation"
    follow = [*first, ChatMessage("assistant", reply), ChatMessage("user", "And of Italy?")]
    _, answer = collect(llm.stream(follow, max_tokens=12, temperature=0.0))
    assert llm.reused_tokens >= len(llm.prompt_tokens(first)), "the first turn was read again"

    cold = LlamaCppLLM(tiny.path, context_length=2048, threads=1, snapshots=0)
    collect(cold.stream(first, max_tokens=12, temperature=0.0))
    collect(cold.stream(other, max_tokens=8, temperature=0.0))
    _, reference = collect(cold.stream(follow, max_tokens=12, temperature=0.0))
    assert cold.reused_tokens < 8, "without snapshots the rewrite evicts the conversation"
    assert answer == reference


def test_snapshots_are_bounded_and_skip_short_contexts(tiny: LlamaCppLLM) -> None:
    llm = LlamaCppLLM(tiny.path, context_length=2048, threads=1, snapshots=1, snapshot_min_tokens=16)
    prompts = [
        [
            ChatMessage("system", f"You are assistant number {i}. " + "Be brief. " * 6),
            ChatMessage("user", "Say hello."),
        ]
        for i in range(3)
    ]
    for messages in prompts:
        collect(llm.stream(messages, max_tokens=4, temperature=0.0))
    assert len(llm._snapshots) == 1
    collect(llm.stream([ChatMessage("user", "Hi")], max_tokens=2, temperature=0.0))
    collect(llm.stream([ChatMessage("user", "Yo")], max_tokens=2, temperature=0.0))
    held = llm._snapshots[0].tokens
    assert len(held) >= 16, "a context shorter than snapshot_min_tokens is not worth keeping"


def test_prompt_longer_than_context_is_a_clear_error(tiny: LlamaCppLLM) -> None:
    long = ChatMessage("user", "word " * 3000)
    with pytest.raises(GroundglassError, match="context"):
        list(tiny.stream([long], max_tokens=4))


def test_missing_model_file(llm_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist") as err:
        load_llm(str(tmp_path / "absent.gguf"), llm_settings)
    assert err.value.fix


def test_file_that_is_not_gguf(llm_settings: Settings, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("this is not a model\n")
    with pytest.raises(ModelError, match="not a GGUF file"):
        load_llm(str(bogus), llm_settings)


def test_truncated_gguf(llm_settings: Settings, tmp_path: Path, tiny_gguf: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with open(tiny_gguf, "rb") as f:
        truncated.write_bytes(f.read(2_000_000))
    with pytest.raises(ModelError, match="could not load") as err:
        load_llm(str(truncated), llm_settings)
    assert "re-download" in err.value.fix


# --- OpenAI-compatible runtime against llama-cpp-python's server -----------------------------------------


def remote(server, settings: Settings, *, with_key: bool = True) -> OpenAICompatibleLLM:
    api_key = server.api_key if with_key else None
    llm = load_llm(f"openai:{server.model}@{server.base_url}", with_llm(settings, api_key=api_key))
    assert isinstance(llm, OpenAICompatibleLLM)
    return llm


def test_openai_runtime_streams_from_a_real_server(
    llama_server, llm_settings: Settings, tiny: LlamaCppLLM
) -> None:
    llm = remote(llama_server, llm_settings)
    completion = Completion()
    pieces, text = collect(
        llm.stream([SYSTEM, QUESTION], max_tokens=24, temperature=0.0, completion=completion)
    )
    assert len(pieces) > 1 and "Paris" in text
    assert completion.finish_reason == "stop"
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert llm.name == llama_server.model
    # Same weights, same chat template, greedy decoding: both runtimes say the same thing.
    _, local = collect(tiny.stream([SYSTEM, QUESTION], max_tokens=24, temperature=0.0))
    assert text == local


def test_openai_runtime_length_and_stop(llama_server, llm_settings: Settings) -> None:
    llm = remote(llama_server, llm_settings)
    completion = Completion()
    collect(llm.stream([COUNT], max_tokens=5, temperature=0.0, completion=completion))
    assert completion.finish_reason == "length"
    _, cut = collect(llm.stream([COUNT], max_tokens=20, temperature=0.0, stop=["3"]))
    assert cut and "3" not in cut


def test_openai_runtime_api_key_from_environment(
    llama_server, llm_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelError, match="HTTP 401") as err:
        list(remote(llama_server, llm_settings, with_key=False).stream([QUESTION], max_tokens=2))
    assert "GROUNDGLASS_LLM_API_KEY" in err.value.fix
    monkeypatch.setenv("OPENAI_API_KEY", llama_server.api_key)
    assert "".join(remote(llama_server, llm_settings, with_key=False).stream([QUESTION], max_tokens=2))


def test_endpoint_down(llm_settings: Settings, unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/v1"
    llm = load_llm(f"openai:m@{url}", llm_settings)
    with pytest.raises(ModelError) as err:
        list(llm.stream([QUESTION], max_tokens=4))
    assert str(err.value).startswith(f"cannot reach the model endpoint at {url}/chat/completions")
    assert err.value.fix == "start the server or fix --model"


# --- misbehaving loopback servers ------------------------------------------------------------------------


class _Misbehaving(http.server.BaseHTTPRequestHandler):
    """POST /<mode>/v1/chat/completions answers badly in the way <mode> names."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        mode = self.path.strip("/").split("/")[0]
        if mode == "slow":
            time.sleep(2)
        status, ctype, body = {
            "html": (200, "text/html", b"<html><body>Welcome to nginx!</body></html>"),
            "sse-garbage": (200, "text/event-stream", b"data: {not json at all\n\n"),
            "json-garbage": (200, "application/json", b'{"hello": "world"}'),
            "error500": (500, "text/plain", b"upstream exploded"),
            "missing": (404, "application/json", b'{"error": {"message": "model not found"}}'),
            "slow": (200, "text/event-stream", b"data: [DONE]\n\n"),
        }[mode]
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # "slow": the client left first
            self.wfile.write(body)


@pytest.fixture(scope="module")
def misbehaving_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("html", "not an OpenAI-compatible chat response: '<html><body>Welcome to nginx!"),
        ("sse-garbage", "not an OpenAI-compatible chat response: '{not json at all'"),
        ("json-garbage", "not an OpenAI-compatible chat response"),
        ("error500", "answered HTTP 500: upstream exploded"),
        ("missing", "answered HTTP 404"),
    ],
)
def test_garbage_from_the_endpoint(
    misbehaving_server: str, llm_settings: Settings, mode: str, message: str
) -> None:
    llm = load_llm(f"openai:m@{misbehaving_server}/{mode}/v1", llm_settings)
    with pytest.raises(ModelError) as err:
        list(llm.stream([QUESTION], max_tokens=4))
    assert message in str(err.value)
    assert f"{misbehaving_server}/{mode}/v1/chat/completions" in str(err.value)


def test_endpoint_timeout(misbehaving_server: str, llm_settings: Settings) -> None:
    llm = load_llm(f"openai:m@{misbehaving_server}/slow/v1", with_llm(llm_settings, timeout_s=0.5))
    with pytest.raises(ModelError, match=r"did not answer within 0.5 s"):
        list(llm.stream([QUESTION], max_tokens=4))
