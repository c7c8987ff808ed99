"""Related questions: cleaning, the tiny model under the schema, the second pass anchored to the
sources' titles, the MiniLM filter, and failure -> []."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator
from loopback_web import LoopbackServer, send_json

from groundglass.answer.conversation import RELEVANCE_FLOOR, source_similarity
from groundglass.answer.llm.base import Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM
from groundglass.answer.related import anchored_schema, clean_questions, related_questions, unasked_titles
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


class RepeatingModel(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: the reader's question four times, then one question per title
    asked for (what a small model under greedy decoding does, and what the second pass asks)."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        RepeatingModel.seen.append(body)
        first = len(RepeatingModel.seen) == 1
        questions = [QUESTION] * 4 if first else ["What is radioactive decay?"]
        content = json.dumps({"questions": questions})
        reply = {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130},
        }
        send_json(self, reply)


def test_a_model_that_repeats_the_question_is_asked_once_per_other_source(sources: list[Source]) -> None:
    server = LoopbackServer(RepeatingModel)
    llm = OpenAICompatibleLLM("repeater", f"{server.base_url}/v1", timeout_s=5)
    RepeatingModel.seen.clear()
    completion = Completion()
    try:
        out = related_questions(llm, QUESTION, ANSWER, sources, n=4, completion=completion)
    finally:
        llm.close()
        server.close()
    assert out == ["What is radioactive decay?"]
    assert len(RepeatingModel.seen) == 2
    assert "Radioactive decay" in RepeatingModel.seen[1]["messages"][-1]["content"]
    assert completion.completion_tokens == 60  # both passes are counted


def test_the_anchored_schema_asks_one_question_naming_each_title() -> None:
    titles = unasked_titles(
        QUESTION,
        [
            Source("u1", "Marie Curie", "x"),
            Source("u2", "Radioactive  decay", "y"),
            Source("u3", "Radioactive decay", "z"),
            Source("u4", 'Bad "title"?', "w"),
        ],
        4,
    )
    assert titles == ["Radioactive decay"]  # asked already, repeated, or not writable in a question
    validator = Draft202012Validator(anchored_schema(titles))
    assert validator.is_valid({"questions": ["What is radioactive decay?"]})
    assert validator.is_valid({"questions": ["How fast is Radioactive decay measured?"]})
    assert not validator.is_valid({"questions": [QUESTION]})
    assert not validator.is_valid({"questions": ["What is radioactive decay?", "What is radioactive decay?"]})
