"""Which questions ask for one value, and when an answer has given it."""

from __future__ import annotations

import pytest

from groundglass.answer.concise import asks_one_value, gives_value


@pytest.mark.parametrize(
    "question",
    [
        "What is the default rel_tol of math.isclose()?",
        "Which codec in Python's standard encodings has the alias cp819?",
        "In which Node.js version did the default of --max-http-header-size change?",
        "By default, how many requests does MaxKeepAliveRequests allow per persistent connection?",
        "Since Python 3.8, what is the default value of max_workers for ThreadPoolExecutor?",
        "What does os.cpu_count() return if the number of CPUs cannot be determined?",
        "When was the Berlin Wall built?",
        "Who discovered polonium?",
    ],
)
def test_a_question_after_one_value(question: str) -> None:
    assert asks_one_value(question)


@pytest.mark.parametrize(
    "question",
    [
        "What does the -X importtime option do?",
        "What are the default compression levels of gzip.open() and of zlib.compress()?",
        "How does the garbage collector find cycles?",
        "Why is the GIL needed?",
        "Explain what the default isolation level means.",
        "What is asyncio?",
        "Who was Marie Curie?",
        "What is the difference between a list and a tuple?",
    ],
)
def test_a_question_after_a_description_a_list_or_a_reason(question: str) -> None:
    assert not asks_one_value(question)


MAXSIZE = "What is the default maxsize of lru_cache?"


@pytest.mark.parametrize(
    ("answer", "question", "given"),
    [
        (
            "The default maxsize of functools.lru_cache is 128. [1]",
            "What is the default maxsize of lru_cache?",
            True,
        ),
        ("It returns None if undetermined. [2]", "What does os.cpu_count() return if undetermined?", True),
        ("The codec with the alias cp819 is latin_1. [1]", "Which codec has the alias cp819?", True),
        # restating the question, or naming a product, gives no value
        (
            "The default maxsize of lru_cache is documented. [1]",
            "What is the default maxsize of lru_cache?",
            False,
        ),
        (
            "The Python documentation describes lru_cache. [1]",
            "What is the default maxsize of lru_cache?",
            False,
        ),
        # a name answers a "who" question only
        ("Polonium was discovered by Marie Curie. [1]", "Who discovered polonium?", True),
        ("", "Who discovered polonium?", False),
    ],
)
def test_an_answer_gives_the_value(answer: str, question: str, given: bool) -> None:
    assert gives_value(answer, question) is given
