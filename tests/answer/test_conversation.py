"""Conversations: message checks, history fitting, standalone queries with the tiny model, and the reuse and
filtering of earlier sources with MiniLM over real Wikipedia summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundglass.answer.conversation import (
    check_messages,
    check_rewrite,
    covered_by,
    fallback_query,
    filter_relevant,
    fit_history,
    normalize_messages,
    standalone_query,
)
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM
from groundglass.answer.types import ChatMessage, Source
from groundglass.errors import GroundglassError

U, A, S = "user", "assistant", "system"
HAMLET = [
    ChatMessage(U, "Who wrote Hamlet?"),
    ChatMessage(A, "Hamlet was written by William Shakespeare [1]."),
    ChatMessage(U, "and when did he die?"),
]


# --- check_messages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], "messages is empty"),
        ([ChatMessage("tool", "x"), ChatMessage(U, "hi")], "messages[0] has role 'tool'"),
        ([ChatMessage(U, "hi"), ChatMessage(S, "be brief"), ChatMessage(U, "hi")], "system message after"),
        (
            [ChatMessage(U, "Who wrote Hamlet?"), ChatMessage(A, "Shakespeare.")],
            "last message is from the assistant",
        ),
        ([ChatMessage(S, "be brief")], "last message is from the system"),
        ([ChatMessage(U, "   ")], "last user message is empty"),
        ([ChatMessage(U, None)], "no text content"),  # type: ignore[arg-type]
    ],
)
def test_check_messages_rejects_what_cannot_be_answered(messages: list[ChatMessage], expected: str) -> None:
    with pytest.raises(GroundglassError) as err:
        check_messages(messages)
    assert expected in err.value.message
    assert err.value.param == "messages" and err.value.fix


def test_repeated_roles_are_accepted_and_merged() -> None:
    messages = [
        ChatMessage(S, "Be brief."),
        ChatMessage(S, "Cite sources."),
        ChatMessage(A, "Hello!"),
        ChatMessage(U, "Hi"),
        ChatMessage(U, "Who wrote Hamlet?"),
        ChatMessage(A, ""),
        ChatMessage(U, "and when did he die?"),
    ]
    check_messages(messages)
    assert normalize_messages(messages) == [
        ChatMessage(S, "Be brief.\n\nCite sources."),
        ChatMessage(A, "Hello!"),
        ChatMessage(U, "Hi\n\nWho wrote Hamlet?"),
        ChatMessage(U, "and when did he die?"),
    ]  # the question to answer stays apart


# --- fit_history ----------------------------------------------------------------------------------------


def _words(text: str) -> int:
    return len(text.split())


def test_fit_history_drops_the_oldest_turns_first() -> None:
    messages = [
        ChatMessage(S, "one two"),
        ChatMessage(U, "a " * 10),
        ChatMessage(A, "b " * 10),
        ChatMessage(U, "c " * 10),
        ChatMessage(A, "d " * 10),
        ChatMessage(U, "last question"),
    ]
    everything = fit_history(messages, 1000, _words, overhead_tokens=0)
    assert everything == messages
    # 2 (system) + 2 (last) + 10 + 10 fit in 24: the last exchange stays, the first goes
    fitted = fit_history(messages, 24, _words, overhead_tokens=0)
    assert [m.content[:1] for m in fitted] == ["o", "c", "d", "l"]
    # 23 leaves room for the assistant turn only: a history must not start with it
    assert [m.role for m in fit_history(messages, 23, _words, overhead_tokens=0)] == [S, U]


def test_fit_history_with_a_real_tokenizer(tiny: LlamaCppLLM) -> None:
    long_answer = "Shakespeare wrote many plays. " * 60
    messages = [
        ChatMessage(U, "Who wrote Hamlet?"),
        ChatMessage(A, long_answer),
        ChatMessage(U, "and when did he die?"),
    ]
    fitted = fit_history(messages, 200, tiny.count_tokens)
    assert fitted == [messages[-1]]  # the long answer does not fit, and a lone question before it is dropped
    assert fit_history(messages, 2000, tiny.count_tokens) == messages


def test_fit_history_names_the_problem_when_the_question_alone_is_too_long(tiny: LlamaCppLLM) -> None:
    messages = [ChatMessage(S, "Be brief."), ChatMessage(U, "word " * 500)]
    with pytest.raises(GroundglassError) as err:
        fit_history(messages, 300, tiny.count_tokens)
    assert "the system message and the last message need" in err.value.message
    assert "300" in err.value.message and "shorten the question" in err.value.fix
    assert err.value.param == "messages"


# --- standalone queries -----------------------------------------------------------------------------------


def test_first_turn_and_self_contained_follow_ups_need_no_model(unused_port: int) -> None:
    dead = OpenAICompatibleLLM("x", f"http://127.0.0.1:{unused_port}/v1", timeout_s=2)  # any call would fail
    try:
        first = standalone_query(
            dead, [ChatMessage(S, "Be brief."), ChatMessage(U, "  Who wrote   Hamlet? ")]
        )
        assert (first.query, first.rewritten, first.method) == ("Who wrote Hamlet?", False, "single")
        named = standalone_query(dead, [*HAMLET[:2], ChatMessage(U, "When was the Eiffel Tower built?")])
        assert (named.query, named.method) == ("When was the Eiffel Tower built?", "self_contained")
    finally:
        dead.close()


def test_follow_up_gets_the_subject_back_with_the_tiny_model(tiny: LlamaCppLLM) -> None:
    result = standalone_query(tiny, HAMLET)
    assert result.method in ("model", "fallback") and result.rewritten
    assert "die" in result.query.lower()
    assert "shakespeare" in result.query.lower() or "hamlet" in result.query.lower()
    assert result.seconds > 0


def test_model_failure_falls_back_without_raising(unused_port: int) -> None:
    dead = OpenAICompatibleLLM("x", f"http://127.0.0.1:{unused_port}/v1", timeout_s=2)
    try:
        result = standalone_query(dead, HAMLET)
    finally:
        dead.close()
    assert result.method == "fallback" and "cannot reach" in result.reason
    assert result.query == "When did he die? (Hamlet, William Shakespeare)"


@pytest.mark.parametrize(
    ("rewrite", "problem"),
    [
        ("When did William Shakespeare die?", ""),
        ("Death of William Shakespeare", ""),  # one new word is a paraphrase, not an invention
        ("William Shakespeare died in 1616", "invents"),  # an answer, not a question
        ("When did he die?", "does not name"),
        ("Who wrote Hamlet?", "repeats an earlier question"),
        ("", "empty"),
        ("When did the famous English playwright and poet from Stratford upon Avon die exactly?", "invents"),
    ],
)
def test_check_rewrite(rewrite: str, problem: str) -> None:
    reason = check_rewrite(rewrite, "and when did he die?", HAMLET[:2])
    assert (problem in reason) if problem else reason == ""


MANDELA = [
    ChatMessage(U, "Tell me about Nelson Mandela."),
    ChatMessage(A, "He was a South African politician [1]."),
    ChatMessage(U, "Which party did he lead?"),
    ChatMessage(A, "Mandela led the ANC from 1991 to 1997 [1]."),
]
CURIE = [
    ChatMessage(U, "Which Nobel Prize did Marie Curie win?"),
    ChatMessage(A, "The 1903 Physics prize [1]."),
]
GANDHI = "What about Mahatma Gandhi, what did he campaign for?"


@pytest.mark.parametrize(
    ("rewrite", "followup", "earlier", "problem"),
    [
        # the follow-up names its own subject: dropping the lead-in and the pronoun makes it standalone
        ("What did Mahatma Gandhi campaign for?", GANDHI, MANDELA, ""),
        (GANDHI, GANDHI, MANDELA, "does not name"),
        # a bare name takes its question from the conversation
        ("What about Einstein?", "What about Einstein?", CURIE, "does not name"),
        ("Einstein", "What about Einstein?", CURIE, "does not name"),
        ("Which Nobel Prize did Einstein win?", "What about Einstein?", CURIE, ""),
        # the model answered instead of rewriting
        (
            "William Shakespeare died in Stratford.",
            "and when did he die?",
            HAMLET[:2],
            "answers the follow-up",
        ),
        # "the play" names nothing: it is the one the conversation was about
        ("When was the play written?", "When was the play written?", HAMLET[:2], "does not name"),
        ("When was the play Hamlet written?", "When was the play written?", HAMLET[:2], ""),
        # a follow-up that names its own subject needs nothing from the conversation
        ("When did the Berlin Wall fall?", "When did the Berlin Wall fall?", HAMLET[:2], ""),
    ],
)
def test_check_rewrite_follow_ups_that_name_their_subject(
    rewrite: str, followup: str, earlier: list[ChatMessage], problem: str
) -> None:
    reason = check_rewrite(rewrite, followup, earlier)
    assert (problem in reason) if problem else reason == ""


def test_fallback_query_skips_numbers_and_looks_back_for_the_subject() -> None:
    earlier = [
        ChatMessage(U, "Who wrote Hamlet?"),
        ChatMessage(A, "Hamlet was written by William Shakespeare [1]."),
        ChatMessage(U, "When was the play written?"),
        ChatMessage(A, "Between 1599 and 1601 [1]."),
    ]
    assert fallback_query("In which country is it set?", earlier) == "In which country is it set? (Hamlet)"
    tower = [
        ChatMessage(U, "Who designed it?"),
        ChatMessage(A, "Gustave Eiffel's company, from 1887 to 1889 [1]."),
    ]
    assert fallback_query("When was he born?", tower) == "When was he born? (Gustave Eiffel's)"


def test_fallback_query_adds_what_the_follow_up_lacks() -> None:
    earlier = [ChatMessage(U, "Where is the Eiffel Tower?"), ChatMessage(A, "It is in Paris, France [1].")]
    assert fallback_query("How tall is it?", earlier) == "How tall is it? (Eiffel Tower, Paris, France)"
    assert fallback_query("and the Eiffel Tower's height?", earlier).startswith("The Eiffel Tower's height?")
    plain = [ChatMessage(U, "what is photosynthesis"), ChatMessage(A, "a process plants use [1].")]
    assert fallback_query("why is it green?", plain) == "Why is it green? (photosynthesis)"


# --- earlier sources ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki_sources() -> dict[str, Source]:
    from groundglass.answer.index.builtin import wikipedia_documents

    titles = ["William Shakespeare", "Hamlet", "Eiffel Tower", "Marie Curie"]
    return {
        d.title: Source(url=d.uri, title=d.title, text=d.sections[0].text)
        for d in wikipedia_documents(titles=titles)
    }


def test_sources_that_answer_the_follow_up_are_reused(wiki_sources: dict[str, Source]) -> None:
    earlier = [wiki_sources["William Shakespeare"], wiki_sources["Eiffel Tower"], wiki_sources["Hamlet"]]
    coverage = covered_by(earlier, "When was Hamlet written?")
    assert coverage.covered and coverage.best >= 0.55
    assert coverage.kept[0].title == "Hamlet"
    assert "Eiffel Tower" not in [s.title for s in coverage.kept]  # no longer relevant: dropped
    assert coverage.scores == sorted(coverage.scores, reverse=True)


def test_unrelated_follow_up_searches_again_and_drops_everything(wiki_sources: dict[str, Source]) -> None:
    earlier = list(wiki_sources.values())
    coverage = covered_by(earlier, "What is the capital of Japan?")
    assert not coverage.covered and coverage.kept == [] and coverage.best < 0.3
    assert filter_relevant(earlier, "What is the capital of Japan?") == []


def test_a_page_on_the_subject_without_the_fact_is_not_reuse(wiki_sources: dict[str, Source]) -> None:
    """Close in meaning, but the page never says how Curie's daughter spent her life: search again."""
    coverage = covered_by([wiki_sources["Marie Curie"]], "What did Marie Curie's daughter Ève write?")
    assert coverage.kept and not coverage.covered


def test_no_earlier_sources() -> None:
    coverage = covered_by([], "anything")
    assert not coverage.covered and coverage.kept == [] and coverage.best == 0.0


def test_module_file_documents_the_thresholds() -> None:
    import groundglass.answer.conversation as conversation

    doc = Path(conversation.__file__).read_text()
    assert "bench.bench_reuse" in doc and "COVER_THRESHOLD = 0.55" in doc
