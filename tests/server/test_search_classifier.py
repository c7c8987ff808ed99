"""The search classifier on its labelled sets (bench/data) and on the cases its rules separate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groundglass.server.search_classifier import depth, needs_search

DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


@pytest.mark.parametrize("name", ["search_classifier.jsonl", "search_classifier_heldout.jsonl"])
def test_accuracy_on_the_labelled_sets(name: str) -> None:
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    assert len(rows) >= 40 and {r["search"] for r in rows} == {True, False}
    right = sum(needs_search(r["question"]).search == r["search"] for r in rows)
    wrong_skips = [r["question"] for r in rows if r["search"] and not needs_search(r["question"]).search]
    assert right / len(rows) >= 0.95 and len(wrong_skips) <= 1, wrong_skips


@pytest.mark.parametrize(
    ("question", "search", "reason"),
    [
        ("Hello there!", False, "chit-chat"),
        ("Thanks! And what about Germany?", True, "question"),  # a greeting does not hide a question
        ("What is 15% of 80?", False, "arithmetic"),
        ("What is the population of France?", True, "question"),  # "what is" alone is no sum
        ("Summarize this: the board met and postponed the vote to May.", False, "rewriting"),
        ("Summarize the history of Rome", True, "question"),  # no text given: it must be found
        ("Translate 'good night' into Italian", False, "rewriting"),
        ("", False, "chit-chat"),
    ],
)
def test_rules(question: str, search: bool, reason: str) -> None:
    decision = needs_search(question)
    assert (decision.search, decision.reason) == (search, reason)


def test_depth() -> None:
    assert depth("Compare Python and Rust for systems programming") == "pro"
    assert depth("Who designed the Eiffel Tower, and when did Apollo 11 land?") == "pro"
    assert depth("When was the Eiffel Tower completed?") == "fast"
