"""The answer engine end to end, in-process: a real index of real Wikipedia summaries, the tiny
SmolLM2 model through llama.cpp, real MiniLM embeddings.

The tiny model is weak, so these tests check the mechanics (markers map to given sources, the
stream matches the answer, the JSON shape, attribution, the token budget, the decline path), not
the quality of its answers. The decline path is made deterministic by the retrieval threshold:
an unrelated question never reaches the model.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from groundglass.answer import cite, prompt
from groundglass.answer.engine import Engine
from groundglass.answer.events import Done, ErrorEvent, SourcesFound, Token
from groundglass.answer.response import to_perplexity_json
from groundglass.answer.types import AskRequest
from groundglass.config import Settings, load_settings
from groundglass.errors import GroundglassError, ModelError, NotFoundError

TITLES = [
    "Berlin Wall",
    "Mount Everest",
    "Marie Curie",
    "Moon",
    "Jupiter",
    "Eiffel Tower",
    "Apollo 11",
    "Photosynthesis",
]
ON_TOPIC = "When was the Berlin Wall built?"
OFF_TOPIC = "How do I configure a VLAN trunk port on a network switch?"


def settings_for(home: Path, **overrides) -> Settings:  # type: ignore[no-untyped-def]
    return load_settings(None, home=str(home), llm__model="tiny", llm__max_tokens=48, **overrides)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from groundglass.answer.index.builtin import wikipedia_documents
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex

    home = tmp_path_factory.mktemp("gg-home")
    with LocalIndex.open(settings_for(home), "wiki", create=True) as index:
        report = add_documents(index, wikipedia_documents(titles=TITLES))
    assert report.added == len(TITLES)
    return home


@pytest.fixture(scope="module")
def engine(home: Path) -> Engine:
    return Engine(settings_for(home, retrieval__index="wiki"))


def test_stream_yields_sources_then_tokens_then_the_answer(engine: Engine) -> None:
    events = list(engine.stream(AskRequest.from_question(ON_TOPIC)))
    assert isinstance(events[0], SourcesFound) and isinstance(events[-1], Done)
    assert all(isinstance(e, Token) for e in events[1:-1]) and len(events) > 3
    found, answer = events[0], events[-1].answer
    assert found.queries == [ON_TOPIC]
    assert found.sources == answer.sources and answer.sources[0].title == "Berlin Wall"
    assert "".join(e.text for e in events[1:-1]).strip() == answer.content
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.usage.num_search_queries == 1 and answer.model.startswith("SmolLM2")
    assert {"retrieve_s", "rank_s", "first_token_s", "generate_s", "cite_s"} <= set(answer.timings)


def test_every_marker_refers_to_a_given_source_and_the_json_lines_up(engine: Engine) -> None:
    answer = engine.answer(AskRequest.from_question("What did Marie Curie discover?", max_tokens=64))
    n = len(answer.sources)
    assert n >= 1
    assert all(1 <= k <= n for k in cite.cited_numbers(answer.content))
    assert cite.clean_markers(answer.content, n) == answer.content  # nothing left to clean

    data = to_perplexity_json(answer)
    assert data["object"] == "chat.completion" and data["choices"][0]["message"]["role"] == "assistant"
    assert data["citations"] == [r["url"] for r in data["search_results"]]
    assert data["citations"] == [s.url for s in answer.sources]
    assert all(0.0 <= r["score"] <= 1.0 and r["snippet"] for r in data["search_results"])
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # attribution covers the answer's sentences, cites only given sources, and flags what it cannot back
    assert [a["sentence"] for a in data["attribution"]] == [
        s
        for s in cite.split_sentences(answer.content)
        if not (cite.is_decline(s) and not cite.cited_numbers(s))
    ]
    floor = engine.settings.retrieval.min_support
    for a in data["attribution"]:
        assert all(1 <= k <= n for k in a["citations"])
        assert a["supported"] == (
            bool(a["citations"])
            and a["support"] >= floor
            and not a["unsupported_values"]
            and not a["restates_question"]
        )


def test_an_unrelated_question_is_declined_without_calling_the_model(engine: Engine) -> None:
    events = list(engine.stream(AskRequest.from_question(OFF_TOPIC)))
    assert isinstance(events[0], SourcesFound) and events[0].sources == []
    assert [e.text for e in events if isinstance(e, Token)] == [prompt.DECLINE]
    answer = events[-1].answer
    assert answer.declined and answer.content == prompt.DECLINE and answer.sources == []
    assert answer.usage.prompt_tokens == 0 and answer.usage.completion_tokens == 0
    assert answer.usage.num_search_queries == 1
    assert "first_token_s" not in answer.timings
    assert to_perplexity_json(answer)["declined"] is True


def test_the_decline_comes_from_the_relevance_threshold(home: Path) -> None:
    # With the threshold off, the same question reaches the model with the (irrelevant) best sources.
    lenient = Engine(settings_for(home, retrieval__index="wiki", retrieval__min_relevance=-1.0))
    answer = lenient.answer(AskRequest.from_question(OFF_TOPIC, max_tokens=8))
    assert answer.sources and answer.usage.completion_tokens > 0


def test_sources_fit_the_token_budget_and_top_k(home: Path) -> None:
    tight = Engine(
        settings_for(
            home, retrieval__index="wiki", retrieval__context_tokens=120, retrieval__min_relevance=-1.0
        )
    )
    llm = tight.llm()
    answer = tight.answer(AskRequest.from_question("Tell me about the Moon and Jupiter.", max_tokens=4))
    assert answer.sources
    assert sum(llm.count_tokens(s.text) + 16 for s in answer.sources) <= 120
    one = tight.answer(AskRequest.from_question("Tell me about the Moon and Jupiter.", max_tokens=4, top_k=1))
    assert len(one.sources) == 1


def test_search_can_be_turned_off(engine: Engine) -> None:
    answer = engine.answer(AskRequest.from_question("Say hello.", disable_search=True, max_tokens=8))
    assert answer.sources == [] and answer.attribution == [] and not cite.cited_numbers(answer.content)
    assert answer.usage.num_search_queries == 0 and answer.usage.completion_tokens > 0


def test_one_engine_serves_concurrent_questions(engine: Engine) -> None:
    results: dict[str, str] = {}

    def ask(q: str) -> None:
        results[q] = engine.answer(AskRequest.from_question(q, max_tokens=16)).sources[0].title

    threads = [threading.Thread(target=ask, args=(q,)) for q in (ON_TOPIC, "How high is Mount Everest?")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == {ON_TOPIC: "Berlin Wall", "How high is Mount Everest?": "Mount Everest"}


# --- bad input -------------------------------------------------------------------------------------


def test_an_empty_question_is_refused_before_anything_loads(engine: Engine) -> None:
    with pytest.raises(GroundglassError, match="the question is empty"):
        engine.stream(AskRequest.from_question("   "))


def test_an_unknown_index_is_refused_at_the_call(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="index 'nope' does not exist"):
        engine.stream(AskRequest.from_question(ON_TOPIC, index="nope"))


def test_a_bad_model_spec_is_refused_at_the_call(engine: Engine) -> None:
    with pytest.raises(GroundglassError, match="unknown model spec"):
        engine.stream(AskRequest.from_question(ON_TOPIC, model="no-such-model"))


def test_a_model_endpoint_that_is_down_ends_the_stream_with_an_error(
    engine: Engine, unused_port: int
) -> None:
    spec = f"openai:some-model@http://127.0.0.1:{unused_port}/v1"
    events = list(engine.stream(AskRequest.from_question(ON_TOPIC, model=spec)))
    assert isinstance(events[0], SourcesFound) and events[0].sources  # retrieval worked
    assert isinstance(events[-1], ErrorEvent) and events[-1].code == "model_error"
    assert "cannot reach the model endpoint" in events[-1].message
    with pytest.raises(ModelError, match="cannot reach the model endpoint"):
        engine.answer(AskRequest.from_question(ON_TOPIC, model=spec))
