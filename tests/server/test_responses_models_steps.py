"""The Responses API's ``models`` fallback chain, ``max_steps`` and the ``web_search`` tool's
``max_tokens`` / ``max_tokens_per_page``, through the official ``openai`` client against a real server:
``scripted`` answers from a loopback OpenAI-compatible model endpoint that always writes the same cited
answer (test_responses.ScriptedModel), ``broken``'s endpoint is down, ``sonar`` is the tiny model over
the local index, and the corpus_api fixture's ``sonar-web`` searches the loopback SearXNG site.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from server_helpers import Api, Server, create_key, free_port, ledger_rows, make_home, oai
from test_responses import SCRIPT, ScriptedModel

# asks for a description, so the scripted answer is shown whole (a question after one value, such as
# "When was it completed?", ends at its first checked sentence: groundglass.answer.concise)
QUESTION = "Tell me about the Eiffel Tower."
ANSWER = "".join(SCRIPT)


@pytest.fixture(scope="module")
def mapi(index_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from loopback_web import LoopbackServer

    model = LoopbackServer(ScriptedModel)
    extra = (
        f'[server.models.scripted]\nllm = "openai:scripted@{model.base_url}/v1"\n'
        f'[server.models.broken]\nllm = "openai:nothing@http://127.0.0.1:{free_port()}/v1"\n'
    )
    home = make_home(index_home, tmp_path_factory.mktemp("responses-models"), extra)
    key = create_key(home, "acme", rpm=100_000, tpm=100_000_000)
    server = Server(home, free_port()).start()
    try:
        yield Api(server, key)
    finally:
        server.stop()
        model.close()


def test_models_falls_back_past_unknown_and_failing_models(mapi: Api) -> None:
    client = oai(mapi)
    chain = ["sonar-huge", "broken", "scripted"]  # not here, endpoint down, answers
    r = client.responses.create(input=QUESTION, max_output_tokens=64, extra_body={"models": chain})
    assert r.model == "scripted" and r.output_text == ANSWER
    assert [row["status"] for row in ledger_rows(mapi.home, request_id=r.id)] == [200]
    assert ledger_rows(mapi.home, request_id=r.id)[0]["model"] == "scripted"

    events = list(
        client.responses.create(
            input=QUESTION, max_output_tokens=64, stream=True, extra_body={"models": chain}
        )
    )
    assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
    assert events[0].response.model == "scripted"  # the model that answers, from the first event on
    assert events[-1].type == "response.completed" and events[-1].response.output_text == ANSWER

    # models takes precedence over model, as Perplexity documents
    r = client.responses.create(
        model="broken", input=QUESTION, max_output_tokens=64, extra_body={"models": ["scripted"]}
    )
    assert r.model == "scripted"


def test_the_last_model_failing_is_the_error(mapi: Api) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        oai(mapi).responses.create(input=QUESTION, max_output_tokens=8, extra_body={"models": ["broken"]})
    assert info.value.status_code == 502 and "cannot reach the model endpoint" in info.value.message


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"models": ["gpt-4o", "xai/grok-4-1"]}, "models", "models here: broken, scripted, sonar"),
        ({"models": []}, "models", "at least 1"),
        ({"models": ["a", "b", "c", "d", "e", "f"]}, "models", "at most 5"),
        ({"max_steps": 0}, "max_steps", "greater than or equal to 1"),
        ({"max_steps": 101}, "max_steps", "less than or equal to 100"),
    ],
)
def test_bad_models_and_max_steps_are_named(
    mapi: Api, fields: dict[str, Any], param: str, words: str
) -> None:
    r = httpx.post(
        mapi.base_url + "/v1/responses",
        json={"input": QUESTION, **fields},
        headers=mapi.headers(),
        timeout=60,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text


def searches(r: Any) -> int:
    return sum(1 for item in r.output if item.type == "web_search_call")


def test_max_steps_bounds_the_research_steps(mapi: Api) -> None:
    ask = {"model": "sonar", "input": QUESTION, "max_output_tokens": 16, "reasoning": {"effort": "high"}}
    free = oai(mapi).responses.create(**ask)
    one = oai(mapi).responses.create(**ask, extra_body={"max_steps": 1})
    print(
        "FREE",
        searches(free),
        [i.type for i in free.output],
        "ONE",
        searches(one),
        [i.type for i in one.output],
    )
    # high plans sub-queries (how many distinct ones the tiny model writes depends on the llama.cpp
    # build's arithmetic); max_steps=1 leaves one search whatever the plan
    assert searches(free) >= 2 and searches(one) == 1
    assert one.output[-1].type == "message" and one.output_text


def read(api: Api, **tool: Any) -> tuple[int, list[str]]:
    r = oai(api).responses.create(
        model="sonar-web",
        input="Who built the Eddystone lighthouse?",
        max_output_tokens=8,
        tools=[{"type": "web_search", **tool}],  # type: ignore[list-item]
    )
    assert r.usage is not None
    return r.usage.input_tokens, [x["url"].rsplit("/", 1)[1] for x in (r.model_extra or {})["search_results"]]


def test_web_search_max_tokens_bound_what_the_answer_reads(corpus_api: Api, web: tuple[Any, Any]) -> None:
    free_tokens, free = read(corpus_api)
    assert len(free) == len(set(free))  # one source per page, its passages joined
    small_tokens, small = read(corpus_api, max_tokens=100)
    assert 0 < len(small) <= len(free) and small_tokens < free_tokens - 100  # the prompt is smaller
    page_tokens, per_page = read(corpus_api, max_tokens_per_page=180)  # one passage of 180 tokens a page
    assert set(per_page) == set(free) and page_tokens < free_tokens  # the page read twice is read once


@pytest.mark.parametrize(
    ("tool", "param", "words"),
    [
        ({"max_tokens": 99}, "tools.0.max_tokens", "greater than or equal to 100"),
        ({"max_tokens_per_page": 100}, "tools.0.max_tokens_per_page", "passages of 180 tokens"),
        ({"max_tokens": 500, "search_context_size": "low"}, "tools.0", "give search_context_size, or"),
    ],
)
def test_bad_page_budgets_are_named(mapi: Api, tool: dict[str, Any], param: str, words: str) -> None:
    body = {"model": "sonar", "input": QUESTION, "tools": [{"type": "web_search", **tool}]}
    r = httpx.post(mapi.base_url + "/v1/responses", json=body, headers=mapi.headers(), timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text
