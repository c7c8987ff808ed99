"""The planner: validation of whatever a model returns, the fallback plan, waves, placeholders, and plans
written by the tiny model under the JSON-schema grammar."""

from __future__ import annotations

import pytest

from groundglass.answer.effort import PRESETS
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM
from groundglass.answer.planner import (
    Plan,
    SubQuery,
    fallback_plan,
    needs_more,
    part_queries,
    plan,
    resolve,
    validate_plan,
    waves,
)

EIFFEL = "What is the population of the capital of the country where the Eiffel Tower is?"
CHAIN = {
    "steps": [
        {"id": "s1", "query": "country where the Eiffel Tower is", "depends_on": []},
        {"id": "s2", "query": "capital of {s1}", "depends_on": ["s1"]},
        {"id": "s3", "query": "population of {s2}", "depends_on": ["s2"]},
    ]
}


@pytest.fixture
def dead_llm(unused_port: int):  # -> OpenAICompatibleLLM whose every call fails (connection refused)
    llm = OpenAICompatibleLLM("x", f"http://127.0.0.1:{unused_port}/v1", timeout_s=2)
    yield llm
    llm.close()


def _shape(p: Plan) -> list[tuple[str, str, list[str]]]:
    return [(s.id, s.query, s.depends_on) for s in p.steps]


def _assert_well_formed(p: Plan, max_steps: int) -> None:
    assert 1 <= len(p.steps) <= max_steps
    ids = [s.id for s in p.steps]
    assert ids == [f"s{i}" for i in range(1, len(ids) + 1)]
    for i, s in enumerate(p.steps):
        assert set(s.depends_on) <= set(ids[:i]), "each step comes after what it needs"
        assert s.query.strip()
    assert sorted(s.id for w in waves(p) for s in w) == sorted(ids)


# --- validation --------------------------------------------------------------------------------------------


def test_a_good_plan_passes_unchanged() -> None:
    p = validate_plan(CHAIN, EIFFEL, 5)
    assert p is not None and p.source == "model"
    assert _shape(p) == [
        ("s1", "country where the Eiffel Tower is", []),
        ("s2", "capital of {s1}", ["s1"]),
        ("s3", "population of {s2}", ["s2"]),
    ]


def test_validation_repairs_what_a_small_model_gets_wrong() -> None:
    raw = {
        "steps": [
            {
                "id": "s3",
                "query": "population of {s2}",
                "depends_on": ["s2", "s9"],
            },  # unknown s9, listed first
            {"id": "s2", "query": "capital of {s1}", "depends_on": ["s1", "s3", "s2"]},  # cycle and self
            {"id": "s1", "query": "  country where the   Eiffel Tower is ", "depends_on": []},
            {"id": "s1", "query": "Country where the Eiffel tower is?", "depends_on": []},  # repeat
            {"id": "s4", "query": "1884", "depends_on": []},  # unrelated to the question
            {"id": "s6", "query": "compare {s2} and {s3}", "depends_on": ["s2", "s3"]},  # nothing to search
            {"id": "s5", "query": "", "depends_on": []},
            "not a step",
            {"query": 42},
        ]
    }
    p = validate_plan(raw, EIFFEL, 5)
    assert p is not None
    _assert_well_formed(p, 5)
    assert _shape(p) == [
        ("s1", "country where the Eiffel Tower is", []),
        ("s2", "capital of {s1}", ["s1"]),
        ("s3", "population of {s2}", ["s2"]),
    ]


def test_placeholders_imply_dependencies_and_ids_are_renumbered() -> None:
    raw = [
        {"id": "a", "query": "Eiffel Tower country"},
        {"id": "b", "query": "capital of {a}"},
        {"id": "x7", "query": "population of the capital {x7}"},
    ]
    p = validate_plan(
        {
            "steps": [
                {"id": "s7", "query": "capital city of {s4}", "depends_on": []},
                {"id": "s4", "query": "Eiffel Tower country", "depends_on": []},
            ]
        },
        EIFFEL,
        3,
    )
    assert p is not None
    assert _shape(p) == [("s1", "Eiffel Tower country", []), ("s2", "capital city of {s1}", ["s1"])]
    q = validate_plan(raw, EIFFEL, 3)  # non-standard ids are not placeholders: their text stays
    assert q is not None
    _assert_well_formed(q, 3)


def test_the_cap_keeps_steps_in_dependency_order() -> None:
    raw = {
        "steps": [{"id": f"s{i}", "query": f"Eiffel Tower fact {i}", "depends_on": []} for i in range(1, 9)]
    }
    p = validate_plan(raw, EIFFEL, 3)
    assert p is not None and len(p.steps) == 3
    cut = validate_plan(CHAIN, EIFFEL, 2)
    assert cut is not None
    assert _shape(cut) == [("s1", "country where the Eiffel Tower is", []), ("s2", "capital of {s1}", ["s1"])]


def test_a_cycle_of_placeholders_is_broken_by_inlining() -> None:
    raw = {
        "steps": [
            {"id": "s1", "query": "capital of {s2}", "depends_on": ["s2"]},
            {"id": "s2", "query": "country of {s1}", "depends_on": ["s1"]},
        ]
    }
    p = validate_plan(raw, "capital country", 3)
    assert p is not None
    _assert_well_formed(p, 3)
    assert "{" not in p.steps[0].query


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "plan",
        42,
        {},
        {"steps": []},
        {"steps": "s1"},
        [1, 2, None],
        {"steps": [{"id": "s1", "query": "xy"}]},
        {"steps": [{"id": "s1", "query": "1884 1889", "depends_on": []}]},
    ],
)
def test_nothing_usable_gives_none(raw: object) -> None:
    assert validate_plan(raw, EIFFEL, 3) is None


# --- fallback -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "queries"),
    [
        (
            "Which is older, the Eiffel Tower or the Statue of Liberty?",
            ["the Eiffel Tower older", "the Statue of Liberty older"],
        ),
        ("Compare Marie Curie and Albert Einstein", ["Marie Curie", "Albert Einstein"]),
        ("Tea vs coffee", ["Tea", "coffee"]),
        (
            "When was Marie Curie born and where did she die?",
            ["When was Marie Curie born", "where did she die Marie Curie"],
        ),
        (
            "Which ports do smtplib's SMTP.connect and python -m http.server use by default?",
            [
                "Which ports do smtplib's SMTP.connect use by default",
                "Which ports do python -m http.server use by default",
            ],
        ),
        (
            "What are the default compression levels of gzip.open() and of zlib.compress()?",
            [
                "What are the default compression levels of gzip.open()",
                "What are the default compression levels of zlib.compress()",
            ],
        ),
        (
            "What are the default maxsize of functools.lru_cache and the default width of textwrap.wrap()?",
            [
                "What are the default maxsize of functools.lru_cache",
                "What are the default width of textwrap.wrap()",
            ],
        ),
        (
            "What are the capitals of France and Germany?",
            ["What are the capitals of France", "What are the capitals of Germany"],
        ),
        (
            "How do I install and configure nginx?",
            ["How do I install and configure nginx?"],
        ),  # one thing, two verbs
        (EIFFEL, [EIFFEL]),
    ],
)
def test_fallback_plan_splits_comparisons_and_conjunctions(question: str, queries: list[str]) -> None:
    p = fallback_plan(question, 3, reason="test")
    assert p.source == "fallback" and p.reason == "test"
    assert p.queries == queries
    assert all(s.depends_on == [] for s in p.steps)
    assert fallback_plan(question, 1).queries == [question]  # one step allowed: no split


def test_part_queries_are_the_split_or_nothing() -> None:
    assert part_queries("What are the capitals of France and Germany?") == [
        "What are the capitals of France",
        "What are the capitals of Germany",
    ]
    assert part_queries(EIFFEL) == []  # one question: searched as asked, nothing beside it


# --- waves and resolve -------------------------------------------------------------------------------------


def test_waves_put_independent_steps_together() -> None:
    p = Plan(
        [
            SubQuery("s1", "director of Jaws"),
            SubQuery("s2", "Jaws release year"),
            SubQuery("s3", "birth date of {s1}", ["s1"]),
            SubQuery("s4", "age of {s1} in {s2}", ["s3", "s2"]),
            SubQuery("s5", "Jaws box office"),
        ],
        "model",
    )
    assert [[s.id for s in w] for w in waves(p)] == [["s1", "s2", "s5"], ["s3"], ["s4"]]
    broken = Plan(
        [SubQuery("s1", "a", ["s2"]), SubQuery("s2", "b", ["s1"]), SubQuery("s3", "c", ["s9"])], "model"
    )
    assert [[s.id for s in w] for w in waves(broken)] == [["s3"], ["s1", "s2"]]  # never loops forever


def test_resolve_fills_in_earlier_answers() -> None:
    p = validate_plan(CHAIN, EIFFEL, 3)
    assert p is not None
    s1, s2, s3 = p.steps
    answers = {"s1": "The Eiffel Tower is in France [1]. It was built in 1889 [2]."}
    assert resolve(s2, answers, p) == "capital of The Eiffel Tower is in France"
    assert resolve(s2, {"s1": "France"}, p) == "capital of France"
    # s2 found nothing: its own query (with s1's answer) stands in for it
    assert resolve(s3, {"s1": "France", "s2": ""}, p) == "population of capital of France"
    assert resolve(s3, {}, p) == "population of capital of country where the Eiffel Tower is"
    assert resolve(s3, {}) == "population of"  # without the plan, an unknown answer is left out
    extra = SubQuery("s4", "tallest building", ["s2"])  # a dependency without a placeholder
    assert resolve(extra, {"s2": "Paris [3]"}) == "tallest building Paris"
    # an answer that restates the query adds only what is new, not a second copy of the query
    city = SubQuery("s2", "city where Lionel Messi last played club soccer", ["s1"])
    echo = {"s1": "Lionel Messi last played club soccer in 2025."}
    assert resolve(city, echo) == "city where Lionel Messi last played club soccer 2025"
    assert resolve(s1, answers, p) == "country where the Eiffel Tower is"


# --- with models ------------------------------------------------------------------------------------------


def test_minimal_effort_makes_no_model_call(dead_llm: OpenAICompatibleLLM) -> None:
    p = plan(dead_llm, f"  {EIFFEL} ", PRESETS["minimal"])
    assert p.source == "single" and p.queries == [EIFFEL] and p.seconds == 0.0


def test_a_failing_model_gives_the_fallback_plan(dead_llm: OpenAICompatibleLLM) -> None:
    p = plan(dead_llm, "Which is older, the Eiffel Tower or the Statue of Liberty?", PRESETS["medium"])
    assert p.source == "fallback" and "cannot reach" in p.reason
    assert len(p.steps) == 2


@pytest.mark.parametrize("question", [EIFFEL, "Which is older, the Eiffel Tower or the Statue of Liberty?"])
def test_tiny_model_plans_are_always_well_formed(tiny: LlamaCppLLM, question: str) -> None:
    p = plan(tiny, question, PRESETS["high"])
    assert p.source in ("model", "fallback")
    _assert_well_formed(p, PRESETS["high"].max_sub_queries)
    assert p.seconds > 0


def test_needs_more_returns_new_queries_or_nothing(tiny: LlamaCppLLM, dead_llm: OpenAICompatibleLLM) -> None:
    findings = {"country where the Eiffel Tower is": "France", "capital of France": ""}
    more = needs_more(tiny, EIFFEL, findings, max_queries=2, asked=["population of Paris"])
    assert isinstance(more, list) and len(more) <= 2
    assert all(q.lower() not in ("population of paris", "capital of france") for q in more)
    assert needs_more(dead_llm, EIFFEL, findings) == []
    assert needs_more(tiny, EIFFEL, findings, max_queries=0) == []
