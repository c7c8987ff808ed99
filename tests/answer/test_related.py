"""Related questions: cleaning, the tiny model under the schema, the MiniLM filter, and failure -> []."""

from __future__ import annotations

import pytest

from groundglass.answer.conversation import RELEVANCE_FLOOR, source_similarity
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM
from groundglass.answer.related import clean_questions, related_questions
from groundglass.answer.types import Source

QUESTION = "Who was Marie Curie?"
ANSWER = "Marie Curie was a Polish and naturalised-French physicist and chemist [1]."


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    from groundglass.answer.index.builtin import wikipedia_documents

    return [
        Source(url=d.uri, title=d.title, text=d.sections[0].text)
        for d in wikipedia_documents(titles=["Marie Curie", "Radioactive decay"])
    ]


def test_clean_questions() -> None:
    raw = [
        "1. what did she discover",
        "What did she discover?",
        "- Where was Marie Curie born.",
        QUESTION,
        "who was marie curie",
        42,
        "Why?",
        '"When did she die?"',
        "Which prizes did she win ?",
    ]
    assert clean_questions(raw, QUESTION, 5) == [
        "What did she discover?",
        "Where was Marie Curie born?",
        "When did she die?",
        "Which prizes did she win?",
    ]
    assert len(clean_questions(raw, QUESTION, 2)) == 2


def test_tiny_model_questions_are_clean(tiny: LlamaCppLLM, sources: list[Source]) -> None:
    out = related_questions(tiny, QUESTION, ANSWER, sources, n=4)
    assert 1 <= len(out) <= 4  # greedy decoding: SmolLM2 asks about radioactive decay, nationality...
    for q in out:
        assert q.endswith("?") and not q.endswith("??")
        assert q.lower().rstrip("?") != QUESTION.lower().rstrip("?")
    assert len({q.lower() for q in out}) == len(out)


def test_the_embedder_keeps_only_questions_the_sources_are_close_to(
    tiny: LlamaCppLLM, sources: list[Source]
) -> None:
    from groundglass.answer.embeddings import get_embedder

    embedder = get_embedder()
    out = related_questions(tiny, QUESTION, ANSWER, sources, n=5, embedder=embedder)
    for q in out:
        assert float(source_similarity(sources, q, embedder).max()) >= RELEVANCE_FLOOR


def test_failures_give_an_empty_list(unused_port: int, tiny: LlamaCppLLM) -> None:
    dead = OpenAICompatibleLLM("x", f"http://127.0.0.1:{unused_port}/v1", timeout_s=2)
    try:
        assert related_questions(dead, QUESTION, ANSWER, [Source("u", "t", "text")]) == []
    finally:
        dead.close()
    assert related_questions(tiny, QUESTION, ANSWER, []) == []  # nothing to ask about
