"""The Responses API (``/v1/responses``, ``/v1/agent``) through the official openai client, unchanged but
for its base URL and key, against a real ``groundglass serve`` on 127.0.0.1.

``sonar`` answers with the tiny model. ``scripted`` answers with a loopback OpenAI-compatible model
endpoint (standing in for a remote model server) that always writes the same cited answer, so that
the citations' annotations can be checked against known text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import httpx
import openai
import pytest
from perplexity import Perplexity
from pydantic import BaseModel
from server_helpers import (
    Api,
    Server,
    create_key,
    free_port,
    ledger_rows,
    make_home,
    oai,
    send_and_leave,
    wait_until_idle,
)

from groundglass.answer.types import Answer, Source
from groundglass.server.responses_body import annotations

EIFFEL = "https://en.wikipedia.org/wiki/Eiffel_Tower"
# asks for a description, so the scripted answer is shown whole (a question after one value, such as
# "When was it completed?", ends at its first checked sentence: groundglass.answer.concise)
QUESTION = "Tell me about the Eiffel Tower."
# what the scripted model writes, in these pieces; both sentences cite the Eiffel Tower's page
SCRIPT = ["The Eiffel Tower was ", "completed in 1889 [1]. ", "It is 330 metres ", "tall [1]."]
STREAM_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",  # the search
    "response.web_search_call.in_progress",
    "response.web_search_call.searching",
    "response.web_search_call.completed",
    "response.output_item.done",
    "response.output_item.added",  # the message
    "response.content_part.added",
    "response.output_text.delta",
]


class ScriptedModel(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions`` streamed as OpenAI streams it, always with SCRIPT."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    seen: ClassVar[
        list[dict[str, Any]]
    ] = []  # the request bodies, in order (the class is the server's handler)

    def do_POST(self) -> None:
        ScriptedModel.seen.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        events = [
            {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            for piece in SCRIPT
        ]
        events.append(
            {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
            }
        )
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        raw = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture(scope="module")
def rapi(index_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from loopback_web import LoopbackServer

    model = LoopbackServer(ScriptedModel)
    extra = (
        f'[server.models.scripted]\nllm = "openai:scripted@{model.base_url}/v1"\n'
        # a preset whose model endpoint is down (nothing listens on that port)
        f'[server.models.broken]\nllm = "openai:nothing@http://127.0.0.1:{free_port()}/v1"\n'
    )
    home = make_home(index_home, tmp_path_factory.mktemp("responses-home"), extra)
    key = create_key(home, "acme", rpm=100_000, tpm=100_000_000)
    server = Server(home, free_port()).start()
    try:
        yield Api(server, key)
    finally:
        server.stop()
        model.close()


def cited_spans(text: str, notes: list[Any]) -> list[tuple[str, str]]:
    return [(text[a.start_index : a.end_index], a.url) for a in notes]


def test_annotations_span_each_cited_sentence() -> None:
    sources = [
        Source(url="https://a.example/x", title="A", text="a"),
        Source(url="https://b.example/y", title="B", text="b"),
    ]
    content = "First claim [1]. Second one [1][2].\n\nNo citation here. Last [2]."
    notes = annotations(Answer(content=content, sources=sources, model="m"))
    spans = [(content[n["start_index"] : n["end_index"]], n["url"]) for n in notes]
    assert spans == [
        ("First claim [1].", "https://a.example/x"),
        ("Second one [1][2].", "https://a.example/x"),
        ("Second one [1][2].", "https://b.example/y"),
        ("Last [2].", "https://b.example/y"),
    ]
    assert {n["title"] for n in notes} == {"A", "B"} and all(n["type"] == "url_citation" for n in notes)


def test_plain_response_with_citations_searches_and_usage(rapi: Api) -> None:
    r = oai(rapi).responses.create(model="scripted", input=QUESTION, max_output_tokens=60)
    assert r.object == "response" and r.status == "completed" and r.model == "scripted"
    assert r.output_text == "".join(SCRIPT)
    search, message = r.output
    assert search.type == "web_search_call" and search.status == "completed"
    assert search.action.query == QUESTION and EIFFEL in [s.url for s in search.action.sources]
    assert message.type == "message" and message.role == "assistant"
    part = message.content[0]
    assert part.type == "output_text"
    assert cited_spans(part.text, part.annotations) == [
        ("The Eiffel Tower was completed in 1889 [1].", EIFFEL),
        ("It is 330 metres tall [1].", EIFFEL),
    ]
    assert part.annotations[0].title == "Eiffel Tower"
    u = r.usage
    assert (u.input_tokens, u.output_tokens) == (120, 20) and u.total_tokens == 140
    extra = u.model_extra or {}
    assert extra["num_search_queries"] == 1 and extra["cost"]["currency"] == "USD"  # (no price set: 0)
    assert (r.model_extra or {})["citations"][0] == EIFFEL
    rows = ledger_rows(rapi.home, request_id=r.id)
    assert [(x["status"], x["endpoint"], x["model"], x["prompt_tokens"]) for x in rows] == [
        (200, "/v1/responses", "scripted", 120)
    ]
    assert rows[0]["total_cost"] == pytest.approx(extra["cost"]["total_cost"])


def test_streaming_events_in_the_order_the_sdk_reads(rapi: Api) -> None:
    events = list(oai(rapi).responses.create(model="scripted", input=QUESTION, stream=True))
    kinds = [e.type for e in events]
    assert kinds[: len(STREAM_ORDER)] == STREAM_ORDER
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "".join(SCRIPT) and len(deltas) >= 2
    tail = kinds[kinds.index("response.output_text.annotation.added") :]
    assert tail == ["response.output_text.annotation.added"] * 2 + [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-1].response
    assert done.id == events[0].response.id and done.output_text == "".join(SCRIPT)
    added = [e.annotation for e in events if e.type == "response.output_text.annotation.added"]
    assert [a["url"] if isinstance(a, dict) else a.url for a in added] == [EIFFEL, EIFFEL]
    assert cited_spans(done.output_text, done.output[-1].content[0].annotations)[1] == (
        "It is 330 metres tall [1].",
        EIFFEL,
    )
    assert len(ledger_rows(rapi.home, request_id=done.id, status=200)) == 1
    # the SDK's own stream helper checks item identities and assembles the final response
    with oai(rapi).responses.stream(model="scripted", input=QUESTION) as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "".join(SCRIPT)


def test_tiny_model_follow_up_with_previous_response_id(rapi: Api) -> None:
    client = oai(rapi)
    first = client.responses.create(
        model="sonar",
        input=[{"role": "user", "content": QUESTION}],
        max_output_tokens=24,
        extra_body={"preset": "fast"},
    )
    assert first.output_text.strip() and first.reasoning.effort == "minimal"
    cost = (first.usage.model_extra or {})["cost"]
    assert cost["request_cost"] == pytest.approx(0.005) and cost["total_cost"] > 0.005  # sonar's prices
    follow = client.responses.create(
        model="sonar", input="How tall is it?", previous_response_id=first.id, max_output_tokens=24
    )
    trace = follow.reasoning.model_extra or {}
    assert trace["rewrite"]["rewritten"] and "Eiffel" in trace["rewrite"]["query"]  # the history was read
    assert follow.previous_response_id == first.id
    again = client.responses.retrieve(follow.id)
    assert again.id == follow.id and again.output_text == follow.output_text
    # another project can neither read nor continue it
    other = create_key(rapi.home, "other-project")
    with pytest.raises(openai.NotFoundError):
        oai(rapi, other).responses.retrieve(follow.id)
    with pytest.raises(openai.NotFoundError) as info:
        oai(rapi, other).responses.create(input="And why?", previous_response_id=follow.id)
    assert info.value.body["param"] == "previous_response_id"
    # store=false: continued, not read back
    hidden = client.responses.create(
        model="sonar", input=QUESTION, store=False, max_output_tokens=8, tools=[]
    )
    assert not [o for o in hidden.output if o.type == "web_search_call"]  # tools=[]: no search
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(hidden.id)
    cont = client.responses.create(
        model="sonar", input="Who built it?", previous_response_id=hidden.id, max_output_tokens=8, tools=[]
    )
    assert cont.status in ("completed", "incomplete")


def test_agent_path_web_search_tool_and_instructions(rapi: Api) -> None:
    body = {
        "preset": "fast",
        "input": QUESTION,
        "instructions": "Answer in one sentence.",
        "max_output_tokens": 24,
        "tools": [{"type": "web_search", "filters": {"search_domain_filter": ["wikipedia.org"]}}],
    }
    r = httpx.post(f"{rapi.base_url}/v1/agent", json=body, headers=rapi.headers(), timeout=120)
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["object"], data["model"]) == ("response", "sonar")
    assert data["instructions"] == body["instructions"]
    assert data["citations"] and all("wikipedia.org" in u for u in data["citations"])
    assert data["tools"] == body["tools"]
    rows = ledger_rows(rapi.home, request_id=data["id"])
    assert [x["endpoint"] for x in rows] == ["/v1/responses"]
    refused = httpx.post(
        f"{rapi.base_url}/v1/agent",
        json={"input": QUESTION, "stream_options": {}},
        headers=rapi.headers(),
        timeout=60,
    )  # refused before the route: one name still
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "stream_options"
    assert [x["status"] for x in ledger_rows(rapi.home, endpoint="/v1/responses")].count(400) >= 1
    assert not ledger_rows(rapi.home, endpoint="/v1/agent")


@pytest.mark.parametrize(
    ("extra", "status", "param", "words"),
    [
        ({"user": "u1"}, 400, "user", "unknown parameter"),
        (  # sonar searches the local index, where a location changes nothing
            {"tools": [{"type": "web_search", "user_location": {"country": "FR"}}]},
            400,
            "tools.0.user_location",
            "searches the local index",
        ),
        (
            {"tools": [{"type": "web_search", "user_location": {"country": "FR", "zip": "75001"}}]},
            400,
            "tools.0.user_location.zip",
            "unknown parameter",
        ),
        ({"tools": [{"type": "function", "name": "f"}]}, 400, "tools.0.type", "web_search"),
        ({"preset": "deep-research"}, 400, "preset", "fast, low, medium, high"),
        ({"preset": "fast", "reasoning": {"effort": "high"}}, 400, None, "give one of the two"),
        ({"input": "   "}, 400, "input", "empty"),
        ({"previous_response_id": "resp_nothing"}, 404, "previous_response_id", "no response"),
        ({"model": "nope"}, 404, "model", "does not exist"),
        ({"max_output_tokens": 0}, 400, "max_output_tokens", "greater than or equal"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {"type": "input_image", "image_url": "ftp://x/y.png"},
                        ],
                    }
                ]
            },
            400,
            "input",
            "http",
        ),
        (
            {"tools": [{"type": "web_search", "filters": {"search_recency_filter": "decade"}}]},
            400,
            "tools.0.filters.search_recency_filter",
            "hour",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    rapi: Api, extra: dict[str, Any], status: int, param: str | None, words: str
) -> None:
    body = {"model": "sonar", "input": QUESTION, **extra}
    r = httpx.post(f"{rapi.base_url}/v1/responses", json=body, headers=rapi.headers(), timeout=60)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"]


def test_openai_client_raises_for_an_unknown_field(rapi: Api) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(rapi).responses.create(model="sonar", input=QUESTION, extra_body={"background": True})
    assert info.value.body["param"] == "background"


def test_perplexity_sdk_responses(rapi: Api) -> None:
    client = Perplexity(base_url=rapi.base_url, api_key=rapi.key, max_retries=0, timeout=120)
    r = client.responses.create(preset="fast", model="scripted", input=QUESTION, max_output_tokens=60)
    assert r.output_text == "".join(SCRIPT) and r.status == "completed"
    notes = r.output[-1].content[0].annotations
    assert [(r.output_text[a.start_index : a.end_index], a.url) for a in notes] == [
        ("The Eiffel Tower was completed in 1889 [1].", EIFFEL),
        ("It is 330 metres tall [1].", EIFFEL),
    ]
    cost = r.usage.cost  # the Agent API's grouping adds up to the total
    assert cost.currency == "USD"
    assert cost.input_cost + cost.output_cost + (cost.tool_calls_cost or 0) == pytest.approx(cost.total_cost)
    assert r.usage.tool_calls_details["web_search"].invocation == 1
    text = "".join(
        getattr(e, "delta", "") or ""
        for e in client.responses.create(preset="fast", model="scripted", input=QUESTION, stream=True)
        if e.type == "response.output_text.delta"
    )
    assert text == "".join(SCRIPT)


def test_a_model_endpoint_that_is_down_is_a_502_and_a_ledger_row(rapi: Api) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        oai(rapi).responses.create(model="broken", input=QUESTION)
    assert info.value.status_code == 502 and "cannot reach the model endpoint" in info.value.message
    seen = []
    with pytest.raises(openai.APIError) as stream_info:  # the search ran first, so the stream had begun
        for event in oai(rapi).responses.create(model="broken", input=QUESTION, stream=True):
            seen.append(event)
    assert "cannot reach the model endpoint" in stream_info.value.message
    kinds = [e.type for e in seen]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert seen[-1].response.status == "failed" and seen[-1].response.error.code == "model_error"
    assert [o.type for o in seen[-1].response.output] == ["web_search_call"]
    rows = [r for r in ledger_rows(rapi.home, model="broken") if r["endpoint"] == "/v1/responses"]
    assert [r["status"] for r in rows] == [502, 502]


class Fact(BaseModel):
    name: str
    year: int


def test_structured_output_through_text_format_and_response_format(rapi: Api) -> None:
    parsed = oai(rapi).responses.parse(model="sonar", input=QUESTION, text_format=Fact, max_output_tokens=60)
    assert isinstance(parsed.output_parsed, Fact) and isinstance(parsed.output_parsed.year, int)
    assert parsed.text.format.type == "json_schema" and parsed.text.format.name == "Fact"
    schema = {"type": "object", "properties": {"year": {"type": "integer"}}, "required": ["year"]}
    body = {
        "model": "sonar",
        "input": QUESTION,
        "max_output_tokens": 30,
        "response_format": {"type": "json_schema", "json_schema": {"schema": schema}},
    }
    r = httpx.post(f"{rapi.base_url}/v1/responses", json=body, headers=rapi.headers(), timeout=120)
    assert r.status_code == 200, r.text
    text = r.json()["output"][-1]["content"][0]["text"]
    assert isinstance(json.loads(text)["year"], int)
    both = {**body, "text": {"format": {"type": "json_schema", "name": "y", "schema": schema}}}
    r = httpx.post(f"{rapi.base_url}/v1/responses", json=both, headers=rapi.headers(), timeout=60)
    assert r.status_code == 400 and "give the output format once" in r.json()["error"]["message"]
    bad = {
        "model": "sonar",
        "input": QUESTION,
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "objekt"}}},
    }
    r = httpx.post(f"{rapi.base_url}/v1/responses", json=bad, headers=rapi.headers(), timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "text.format", r.text


def test_the_think_trace_is_a_reasoning_item(rapi: Api) -> None:
    question = "When was the Eiffel Tower completed, and who designed it?"
    client = oai(rapi)
    r = client.responses.create(
        model="sonar-reasoning-pro", input=question, max_output_tokens=16, reasoning={"effort": "low"}
    )
    thought = r.output[0]
    assert thought.type == "reasoning" and thought.summary[0].text.strip()
    assert "<think>" not in r.output_text and "</think>" not in r.output_text and r.output_text.strip()
    assert [o.type for o in r.output[1:-1]] == ["web_search_call"] * len(r.output[1:-1]) and r.output[1:-1]
    events = list(
        client.responses.create(
            model="sonar-reasoning-pro",
            input=question,
            max_output_tokens=16,
            reasoning={"effort": "low"},
            stream=True,
        )
    )
    kinds = [e.type for e in events]
    assert kinds[2] == "response.output_item.added" and events[2].item.type == "reasoning"
    trace = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    answer = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.output[0].summary[0].text == trace and "<think>" not in answer
    assert final.output_text == answer
    assert [e.output_index for e in events if e.type == "response.output_item.added"] == list(
        range(len(final.output))
    )  # indexes in the order the items were added


@pytest.mark.parametrize("leave_after_s", [0.0, 1.0])
def test_a_stream_whose_client_leaves_early_is_stopped_and_billed(rapi: Api, leave_after_s: float) -> None:
    """A streamed response whose client leaves at any moment, even before its first event was written,
    stops the model and leaves exactly one ledger row (499, or 200 when the small model happened to end
    first)."""
    count = "Count from 1 to 2000, one number per line."
    body = {"model": "sonar", "stream": True, "max_output_tokens": 1500, "tools": [], "input": count}
    assert wait_until_idle(rapi), "an earlier answer is still running"
    before = len(ledger_rows(rapi.home))
    send_and_leave(rapi, "/v1/responses", body, leave_after_s)
    deadline = time.monotonic() + 30
    while len(rows := ledger_rows(rapi.home)) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    new = rows[before:]
    assert len(new) == 1 and new[0]["status"] in (200, 499), new
    assert new[0]["endpoint"] == "/v1/responses"
    assert wait_until_idle(rapi), "the model went on answering a client that had left"


def test_language_preference_asks_the_model_for_the_language(rapi: Api) -> None:
    """Perplexity's ``language_preference`` reaches the model as the system prompt's request, through the
    Responses API and chat alike; an unknown code is a 400 naming it."""

    def system_prompt() -> str:
        messages = ScriptedModel.seen[-1]["messages"]
        return "\n".join(m["content"] for m in messages if m["role"] == "system")

    oai(rapi).responses.create(
        model="scripted", input=QUESTION, max_output_tokens=60, extra_body={"language_preference": "fr"}
    )
    assert "Answer in French." in system_prompt()
    Perplexity(base_url=rapi.base_url, api_key=rapi.key, max_retries=0).chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": QUESTION}], language_preference="de"
    )
    assert "Answer in German." in system_prompt()
    oai(rapi).responses.create(model="scripted", input=QUESTION, max_output_tokens=60)
    assert "Answer in" not in system_prompt()
    with pytest.raises(openai.BadRequestError) as info:
        oai(rapi).responses.create(model="scripted", input=QUESTION, extra_body={"language_preference": "xx"})
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "language_preference"
