"""Conversations and reasoning effort through the engine: follow-ups rewritten, earlier sources reused,
plans searched step by step with a visible trace, related questions, and bad conversations refused.

Real index of Wikipedia summaries, the tiny SmolLM2 model under JSON-schema grammars: the mechanics
are checked, not the quality of a 135M model's prose.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from groundglass.answer import prompt
from groundglass.answer.engine import Engine
from groundglass.answer.events import Done, SourcesFound, StepDone, Token
from groundglass.answer.llm.base import ChatMessage
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.response import to_perplexity_json
from groundglass.answer.types import AskRequest
from groundglass.config import load_settings
from groundglass.errors import GroundglassError

TITLES = [
    "Berlin Wall",
    "Marie Curie",
    "Pierre Curie",
    "Eiffel Tower",
    "Paris",
    "France",
    "Apollo 11",
    "Moon",
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    from groundglass.answer.index.builtin import wikipedia_documents
    from groundglass.answer.index.ingest import add_documents
    from groundglass.answer.index.store import LocalIndex

    home = tmp_path_factory.mktemp("gg-reasoning")
    settings = load_settings(
        None,
        home=str(home),
        llm__model="tiny",
        llm__max_tokens=32,
        llm__temperature=0.0,
        retrieval__index="wiki",
    )
    with LocalIndex.open(settings, "wiki", create=True) as index:
        add_documents(index, wikipedia_documents(titles=TITLES))
    return Engine(settings)


def test_medium_effort_plans_streams_a_think_trace_and_reports_its_steps(engine: Engine) -> None:
    question = "Who designed the Eiffel Tower, and when did Apollo 11 land on the Moon?"
    events = list(engine.stream(AskRequest.from_question(question, reasoning_effort="medium", max_tokens=24)))
    kinds = [type(e).__name__ for e in events]
    first_source = kinds.index("SourcesFound")
    # the trace opens first, each step is announced before the sources, the answer follows
    assert isinstance(events[0], Token) and events[0].text == "<think>\n"
    steps = [e for e in events if isinstance(e, StepDone)]
    assert steps and all(kinds.index("StepDone") < first_source for _ in steps)
    answer = events[-1].answer
    assert isinstance(events[-1], Done)
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert streamed.strip() == answer.content
    assert answer.content.startswith("<think>\n") and "</think>\n\n" in answer.content
    think = answer.content.split("</think>", 1)[0]
    assert all(f'searched "{s.step["query"]}"' in think for s in steps)
    reasoning = answer.reasoning
    assert reasoning is not None and reasoning["effort"] == "medium"
    assert reasoning["plan"]["source"] in ("model", "fallback")
    assert [s["query"] for s in reasoning["steps"]] == [s.step["query"] for s in steps]
    assert all(
        {"id", "query", "round", "sources", "partial_answer", "seconds"} <= set(s) for s in reasoning["steps"]
    )
    assert answer.usage.num_search_queries == len(steps) >= 1
    assert answer.usage.reasoning_tokens > 0
    planned = [s for s in reasoning["steps"] if s["id"] != "q"]
    assert len(planned) > 1  # two questions in one: the question as asked is searched beside them
    whole = next(s for s in reasoning["steps"] if s["id"] == "q")
    assert whole["query"] == question and whole["round"] == 1 and not whole["partial_answer"]
    # attribution covers the answer, not the trace
    assert all("searched" not in a.text for a in answer.attribution)
    data = to_perplexity_json(answer)
    assert data["reasoning"]["steps"] and data["usage"]["reasoning_tokens"] == answer.usage.reasoning_tokens


def test_minimal_effort_is_one_search_without_a_trace(engine: Engine) -> None:
    answer = engine.answer(
        AskRequest.from_question("When was the Berlin Wall built?", reasoning_effort="minimal")
    )
    assert not answer.content.startswith("<think>") and answer.reasoning is None
    assert answer.usage.num_search_queries == 1 and answer.usage.reasoning_tokens == 0
    assert answer.sources[0].title == "Berlin Wall"


def test_a_follow_up_is_rewritten_from_the_conversation(engine: Engine) -> None:
    messages = [
        ChatMessage("user", "Who was Marie Curie?"),
        ChatMessage(
            "assistant",
            "Marie Curie was a physicist and chemist who pioneered research on radioactivity [1].",
        ),
        ChatMessage("user", "Who was her husband?"),
    ]
    answer = engine.answer(AskRequest(messages=messages))
    rewrite = answer.reasoning["rewrite"]
    assert rewrite["rewritten"] and "Curie" in rewrite["query"]
    assert answer.queries == [rewrite["query"]] and answer.usage.num_search_queries == 1
    assert {"Marie Curie", "Pierre Curie"} & {s.title for s in answer.sources}


def test_a_follow_up_does_not_read_the_history_again(engine: Engine) -> None:
    """The rewrite call between two turns evicts the conversation from llama.cpp's cache; the runtime's
    snapshot brings it back, so the answer's prompt finds the earlier turns cached (without the prefill
    beside the search, which would hide the difference)."""
    settings = engine.settings.model_copy(
        update={"llm": engine.settings.llm.model_copy(update={"prefill_during_search": False})}
    )
    sequential = Engine(settings)
    first = sequential.answer(AskRequest.from_question("Who was Marie Curie?"))
    messages = [
        ChatMessage("user", "Who was Marie Curie?"),
        ChatMessage("assistant", first.content),
        ChatMessage("user", "Who was her husband?"),
    ]
    second = sequential.answer(AskRequest(messages=messages))
    assert second.reasoning["rewrite"]["rewritten"], "a rewrite call ran between the turns"
    messages += [ChatMessage("assistant", second.content), ChatMessage("user", "When did he die?")]
    third = sequential.answer(AskRequest(messages=messages))
    llm = sequential.llm()
    assert isinstance(llm, LlamaCppLLM)
    first_turn = prompt.prefix_messages("", [ChatMessage(m.role, m.content) for m in messages[:2]])[:-1]
    assert third.usage.cached_tokens >= len(llm.prompt_tokens(first_turn, add_generation_prompt=False))
    assert third.usage.as_dict()["prompt_tokens_details"]["cached_tokens"] == third.usage.cached_tokens


def test_earlier_sources_that_answer_the_follow_up_are_reused(engine: Engine) -> None:
    first = engine.answer(AskRequest.from_question("When was the Berlin Wall built?"))
    assert first.sources
    messages = [
        ChatMessage("user", "When was the Berlin Wall built?"),
        ChatMessage("assistant", first.content),
        ChatMessage("user", "What did the Berlin Wall separate West Berlin from?"),
    ]
    events = list(engine.stream(AskRequest(messages=messages, prior_sources=first.sources)))
    found = next(e for e in events if isinstance(e, SourcesFound))
    answer = events[-1].answer
    assert answer.reasoning["reused_sources"] is True and answer.usage.num_search_queries == 0
    assert found.sources and {s.url for s in found.sources} <= {s.url for s in first.sources}
    # an unrelated follow-up searches afresh and drops the earlier sources as no longer relevant
    messages[-1] = ChatMessage("user", "Who was the first person to walk on the Moon?")
    fresh = engine.answer(AskRequest(messages=messages, prior_sources=first.sources))
    assert fresh.reasoning["reused_sources"] is False and fresh.usage.num_search_queries == 1
    assert all(s.title != "Berlin Wall" for s in fresh.sources)


def test_related_questions_when_asked(engine: Engine) -> None:
    answer = engine.answer(AskRequest.from_question("Who was Pierre Curie?", return_related_questions=True))
    assert answer.related_questions and all(q.endswith("?") for q in answer.related_questions)
    assert "Who was Pierre Curie?" not in answer.related_questions
    plain = engine.answer(AskRequest.from_question("Who was Pierre Curie?"))
    assert plain.related_questions == []


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (
            [ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello")],
            "the last message is from the assistant",
        ),
        ([ChatMessage("tool", "x"), ChatMessage("user", "Hi")], "has role 'tool'"),
        (
            [ChatMessage("user", "Hi"), ChatMessage("system", "Be brief"), ChatMessage("user", "Who?")],
            "system message after",
        ),
        ([], "messages is empty"),
    ],
)
def test_malformed_conversations_are_refused(
    engine: Engine, messages: list[ChatMessage], message: str
) -> None:
    with pytest.raises(GroundglassError) as info:
        engine.stream(AskRequest(messages=messages))
    assert message in str(info.value) and info.value.param == "messages"


def test_bad_effort_and_overlong_history(engine: Engine) -> None:
    with pytest.raises(GroundglassError) as info:
        engine.stream(AskRequest.from_question("Who was Marie Curie?", reasoning_effort="extreme"))
    assert info.value.param == "reasoning_effort" and "minimal" in str(info.value)
    # a history far beyond the context is trimmed to its latest turns, not refused
    long_turn = "The Berlin Wall divided the city. " * 400
    messages = [ChatMessage("user", long_turn), ChatMessage("assistant", long_turn)] * 3 + [
        ChatMessage("user", "When was the Berlin Wall built?")
    ]
    answer = engine.answer(AskRequest(messages=messages))
    assert answer.sources and answer.usage.prompt_tokens < engine.llm().context_length
    # ... but a question that alone overflows the context is refused with the fix
    with pytest.raises(GroundglassError) as info:
        engine.stream(AskRequest.from_question("Why? " * 5000))
    assert info.value.param == "messages"


def test_chat_in_the_terminal_keeps_the_conversation(engine: Engine) -> None:
    gg = str(Path(sys.executable).parent / "groundglass")
    env = {**os.environ, "GROUNDGLASS_HOME": str(engine.settings.home), "GROUNDGLASS_LLM_THREADS": "1"}
    script = "Who was Marie Curie?\nWho was her husband?\n/sources\n/new\n/exit\nnever read\n"
    proc = subprocess.run(
        [gg, "chat", "--index", "wiki", "--model", "tiny", "--max-tokens", "16"],
        input=script,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    turns = [line for line in proc.stdout.splitlines() if line.startswith("> ")]
    assert turns == ["> Who was Marie Curie?", "> Who was her husband?"]
    # the follow-up was searched as a standalone query naming Curie, and /sources lists what was gathered
    found = [line for line in proc.stderr.splitlines() if "found for:" in line]
    assert len(found) == 2 and "Curie" in found[1]
    assert "Marie Curie — https://en.wikipedia.org/wiki/Marie_Curie" in proc.stdout
    assert "(new conversation)" in proc.stderr and "never read" not in proc.stdout


def test_answer_length_follows_the_effort_unless_a_cap_is_set(engine: Engine) -> None:
    """Unset ``llm.max_tokens``: each level's own cap (deeper levels write longer answers); set: one cap
    for all; a request's ``max_tokens`` wins over both."""
    uncapped = Engine(
        engine.settings.model_copy(
            update={"llm": engine.settings.llm.model_copy(update={"max_tokens": None})}
        )
    )
    lengths = {
        level: uncapped._prepare(
            AskRequest.from_question("Who was Marie Curie?", reasoning_effort=level)
        ).max_tokens
        for level in ("minimal", "medium", "high")
    }
    assert lengths == {"minimal": 512, "medium": 768, "high": 1536}
    capped = engine._prepare(AskRequest.from_question("Who was Marie Curie?", reasoning_effort="high"))
    assert capped.max_tokens == engine.settings.llm.max_tokens == 32
    asked = uncapped._prepare(
        AskRequest.from_question("Who was Marie Curie?", reasoning_effort="high", max_tokens=7)
    )
    assert asked.max_tokens == 7


def test_the_callers_system_message_reaches_the_answer_prompt(engine: Engine) -> None:
    question = ChatMessage("user", "When was the Berlin Wall built?")
    plain = engine.answer(AskRequest(messages=[question]))
    note = "Answer in French, in one sentence."
    told = engine.answer(AskRequest(messages=[ChatMessage("system", note), question]))
    added = told.usage.prompt_tokens - plain.usage.prompt_tokens
    expected = engine.llm().count_tokens(f"\n\n{prompt.INSTRUCTIONS_LEAD} {note}")
    assert abs(added - expected) <= 3
    with pytest.raises(GroundglassError) as info:
        engine.stream(AskRequest(messages=[ChatMessage("system", "Be brief. " * 400), question]))
    assert "system message" in str(info.value) and info.value.param == "messages"
