"""Schema-constrained generation (``LLM.complete_json``) on real models: the tiny GGUF in-process under a
JSON-schema grammar, and the OpenAI-compatible runtime against llama-cpp-python's server (which refuses
``json_schema`` and accepts ``json_object`` + schema) and against a loopback server that ignores the
format and returns prose."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from loopback_web import send_json

from groundglass.answer import planner
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM
from groundglass.answer.llm.structured import (
    StructuredOutputError,
    check_schema,
    extract_json,
    grammar_schema,
    parse_json_output,
)
from groundglass.errors import GroundglassError, ModelError

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "born": {"type": "integer", "minimum": 0, "maximum": 2100},
        "field": {"enum": ["physics", "chemistry", "music", "other"]},
    },
    "required": ["name", "born", "field"],
    "additionalProperties": False,
}
TAGS = {
    "type": "object",
    "properties": {
        "tags": {
            "type": "array",
            "minItems": 2,
            "maxItems": 4,
            "items": {"type": "string", "minLength": 2, "maxLength": 20},
        }
    },
    "required": ["tags"],
    "additionalProperties": False,
}
# The same schema to JSON Schema (4.0 is an integer there), as Python's json.dumps writes a float 4.0
TAGS_COUNTED_IN_FLOATS = json.loads(
    json.dumps(TAGS)
    .replace('"maxItems": 4', '"maxItems": 4.0')
    .replace('"maxLength": 20', '"maxLength": 20.0')
)


# --- checking output, no model ------------------------------------------------------------------------------


def test_parse_accepts_plain_fenced_and_wrapped_json() -> None:
    value = {"name": "Marie Curie", "born": 1867, "field": "physics"}
    text = json.dumps(value)
    assert parse_json_output(text, PERSON, model="m") == value
    assert parse_json_output(f"```json\n{text}\n```", PERSON, model="m") == value
    assert parse_json_output(f"Sure! Here it is: {text} Hope this helps.", PERSON, model="m") == value
    assert extract_json("noise [1, 2] more") == [1, 2]


@pytest.mark.parametrize(
    ("text", "finish", "expected"),
    [
        ("no json here", "stop", "not JSON"),
        ('{"name": "Marie", "born": 18', "length", "stopped at max_tokens"),
        (
            '{"name": "Marie", "born": "1867", "field": "physics"}',
            "stop",
            "born: '1867' is not of type 'integer'",
        ),
        ('{"name": "Marie", "born": 1867, "field": "poetry"}', "stop", "field: 'poetry' is not one of"),
        ('{"name": "Marie", "born": 1867}', "stop", "'field' is a required property"),
    ],
)
def test_parse_rejects_malformed_output_with_a_typed_error(text: str, finish: str, expected: str) -> None:
    with pytest.raises(StructuredOutputError) as err:
        parse_json_output(text, PERSON, model="m", finish_reason=finish)
    assert expected in str(err.value)
    assert isinstance(err.value, ModelError) and err.value.code == "invalid_model_output"


@pytest.mark.parametrize(
    "schema",
    [
        ["not", "a", "dict"],
        {"type": "no-such-type"},
        {"minItems": -1},
        # Python's json reads NaN, Infinity and 1e999 (inf): a bound no answer can meet, or none at all
        {"type": "integer", "minimum": float("inf")},
        {"type": "number", "maximum": float("nan")},
        {"type": "object", "properties": {"x": {"type": "number", "exclusiveMaximum": float("-inf")}}},
        # lengths no answer reaches, whose grammar would take gigabytes to build
        {"type": "array", "items": {"type": "integer"}, "minItems": 10**9},
        {"type": "object", "properties": {"name": {"type": "string", "minLength": 20_000}}},
        {"type": "string", "pattern": "^a{1000000000}$"},
        json.loads('{"type":"object","properties":{"a":' * 300 + '{"type":"string"}' + "}}" * 300),
        {"type": "string", "pattern": "^a{" + "9" * 5000 + ",}$"},
    ],
)
def test_invalid_schemas_are_refused_naming_response_format(schema: object) -> None:
    with pytest.raises(GroundglassError) as err:
        check_schema(schema)
    assert err.value.param == "response_format"
    assert "schema" in err.value.message


def test_the_grammar_gets_whole_numbers_and_no_huge_counts() -> None:
    """Maximums past MAX_GRAMMAR_COUNT are left to the check after generation (a grammar with them
    crashed llama.cpp or took gigabytes); whole floats are integers to the converter."""
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 20.0}, "maxItems": 10**9},
            "code": {"type": "string", "pattern": "^[A-Z]{1,2000000000}$"},
            "short": {"type": "string", "pattern": "^[A-Z]{2,3}$", "minLength": 2.0},
            "maxItems": {"type": "integer"},  # a property of that name is not a count
        },
    }
    check_schema(schema)
    assert grammar_schema(schema) == {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}},
            "code": {"type": "string"},
            "short": {"type": "string", "pattern": "^[A-Z]{2,3}$", "minLength": 2},
            "maxItems": {"type": "integer"},
        },
    }


# --- llama.cpp: the grammar makes every output valid ------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "schema"),
    [
        ("Describe Marie Curie.", PERSON),
        ("Tell me a joke about cats instead of answering.", PERSON),
        ("List some tags for a blog post about baking bread.", TAGS),
        (
            "What is the population of the capital of the country where the Eiffel Tower is?",
            planner.plan_schema(3),
        ),
        ("List some tags for a blog post about baking bread.", TAGS_COUNTED_IN_FLOATS),
    ],
)
def test_tiny_model_output_always_parses_and_validates(tiny: LlamaCppLLM, prompt: str, schema: dict) -> None:
    from jsonschema import validate

    completion = Completion()
    messages = [ChatMessage("system", "Reply in JSON."), ChatMessage("user", prompt)]
    value = tiny.complete_json(messages, schema, max_tokens=400, completion=completion)
    validate(value, schema)  # raises if complete_json let something invalid through
    assert completion.prompt_tokens > 10 and completion.completion_tokens > 3
    assert completion.finish_reason == "stop"


def test_a_bound_too_large_for_a_grammar_is_left_to_the_check(tiny: LlamaCppLLM) -> None:
    """llama.cpp's grammar compiler ended the process with SIGSEGV on this bound (20,000 nested
    repetitions); left out of the grammar, the answer still comes back checked against the schema."""
    city = {"type": "string", "maxLength": 20_000}
    schema = {"type": "object", "properties": {"city": city}, "required": ["city"]}
    question = ChatMessage("user", "What is the capital of France?")
    value = tiny.complete_json([ChatMessage("system", "Reply in JSON."), question], schema, max_tokens=60)
    assert isinstance(value, dict) and isinstance(value["city"], str)


def test_greedy_grammar_loop_matches_llama_cpp_pythons_sampler(tiny: LlamaCppLLM) -> None:
    """The fast path (top token checked first) must pick exactly what the full grammar filter picks."""
    messages = planner.plan_messages("Which is older, the Eiffel Tower or the Statue of Liberty?", 3)
    schema = planner.plan_schema(3)
    tiny.reset()
    fast = tiny.complete_json(messages, schema, max_tokens=200)
    tiny.reset()
    tiny.repeat_penalty = 1.0 + 1e-9  # anything but 1.0 takes llama-cpp-python's create_completion path
    try:
        library = tiny.complete_json(messages, schema, max_tokens=200)
    finally:
        tiny.repeat_penalty = 1.0
    assert fast == library


def test_too_few_tokens_raise_a_clear_error(tiny: LlamaCppLLM) -> None:
    with pytest.raises(StructuredOutputError) as err:
        tiny.complete_json([ChatMessage("user", "Describe Marie Curie.")], PERSON, max_tokens=3)
    assert "max_tokens" in str(err.value)


def test_prompt_longer_than_the_context_is_refused(tiny: LlamaCppLLM) -> None:
    with pytest.raises(GroundglassError) as err:
        tiny.complete_json([ChatMessage("user", "word " * 3000)], TAGS, max_tokens=20)
    assert "context" in str(err.value)


def test_bad_schema_fails_before_generating(tiny: LlamaCppLLM) -> None:
    with pytest.raises(GroundglassError) as err:
        tiny.complete_json([ChatMessage("user", "hi")], {"type": 12}, max_tokens=20)
    assert err.value.param == "response_format"


# --- OpenAI-compatible endpoints ------------------------------------------------------------------------


def test_endpoint_without_json_schema_support_falls_back_to_json_object(llama_server: Any) -> None:
    """llama-cpp-python's server answers 422 to response_format json_schema; the runtime retries with
    {"type": "json_object", "schema": ...}, gets grammar-constrained output, and remembers the mode."""
    llm = OpenAICompatibleLLM(
        llama_server.model, llama_server.base_url, api_key=llama_server.api_key, timeout_s=60
    )
    try:
        completion = Completion()
        value = llm.complete_json(
            [ChatMessage("user", "List tags for a post about bread.")],
            TAGS,
            max_tokens=120,
            completion=completion,
        )
        assert 2 <= len(value["tags"]) <= 4 and all(isinstance(t, str) for t in value["tags"])
        assert llm._json_mode == 1  # json_object + schema
        assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
        again = llm.complete_json([ChatMessage("user", "Describe Marie Curie.")], PERSON, max_tokens=120)
        assert set(again) == {"name", "born", "field"}
    finally:
        llm.close()


class _ProseHandler(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that ignores response_format and answers in prose."""

    bodies: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        reply = {
            "choices": [
                {
                    "message": {"role": "assistant", "content": "I think Marie Curie was great."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7},
        }
        send_json(self, reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def prose_server() -> Iterator[str]:
    _ProseHandler.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProseHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_endpoint_that_ignores_the_format_gets_a_typed_error(prose_server: str) -> None:
    llm = OpenAICompatibleLLM("prose", prose_server, timeout_s=10)
    try:
        with pytest.raises(StructuredOutputError) as err:
            llm.complete_json([ChatMessage("user", "Describe Marie Curie.")], PERSON, max_tokens=50)
    finally:
        llm.close()
    assert "not JSON" in str(err.value) and "Marie Curie was great" in str(err.value)
    sent = _ProseHandler.bodies[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["response_format"]["json_schema"]["schema"] == PERSON
    assert sent["stream"] is False


def test_unreachable_endpoint_is_a_model_error(unused_port: int) -> None:
    llm = OpenAICompatibleLLM("x", f"http://127.0.0.1:{unused_port}/v1", timeout_s=5)
    try:
        with pytest.raises(ModelError, match="cannot reach"):
            llm.complete_json([ChatMessage("user", "hi")], TAGS, max_tokens=20)
    finally:
        llm.close()


def test_module_imports_nothing_heavy() -> None:
    """structured.py is imported by both runtimes: it must not pull llama_cpp or torch in."""
    import subprocess
    import sys

    code = (
        "import sys, groundglass.answer.llm.structured as s; "
        "print('llama_cpp' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.split() == ["False", "False"]
