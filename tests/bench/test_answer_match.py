"""The FanOutQA answer match of bench/eval_reasoning: normalisation, lenient numbers, dict/list gold."""

from __future__ import annotations

import pytest
from bench.answer_match import found, normalize, reference_strings, score


def test_normalize_folds_accents_thousands_ampersands_and_articles() -> None:
    assert normalize("Jørn Utzon designed THE Opera House.") == "jorn utzon designed opera house"
    assert normalize("Dā Də Bātorāno Kor") == "da de batorano kor"
    assert normalize("9,596,961 km2; 0.904 g") == "9596961 km2 0.904 g"
    assert normalize("Shreve, Lamb & Harmon") == "shreve lamb and harmon"


@pytest.mark.parametrize(
    ("ref", "answer", "expected"),
    [
        ("Right", "He bats right-handed.", True),
        ("Right", "He is bright.", False),  # word boundaries
        ("Johann Galle", "found by Johann Gottfried Galle in 1846", True),  # words in order, close together
        ("Johann Galle", "Johann Kepler worked in Prague long before Galle", False),
        ("Sir William Herschel", "William Herschel discovered Uranus", True),
        ("2102650", "Paris has about 2.1 million people", True),  # large numbers within 2 %
        ("2102650", "Paris has about 2.5 million people", False),
        ("9,596,961 km2", "China covers 9,596,960 square kilometres", True),  # unit words ignored
        ("1766", "discovered in 1767", False),  # small integers (years, counts) exactly
        ("3", "Three of them are monarchies.", True),
        ("0.3794", "Mars: 0.38 g", True),
        ("1.25", "a 1.25x speedup", True),  # a factor written with its x
        ("3", "the 3xl size", False),
        ("Henry Cavendish, 1766", "Henry Cavendish isolated it in 1766.", True),  # every comma part
        ("Henry Cavendish, 1766", "Henry Cavendish isolated it in 1767.", False),
        ("Shreve, Lamb and Harmon", "designed by Shreve, Lamb & Harmon", True),
    ],
)
def test_found(ref: str, answer: str, expected: bool) -> None:
    assert found(ref, answer) is expected


def test_score_flattens_dicts_lists_and_booleans_like_fanoutqa() -> None:
    gold = {"Uranus": "Sir William Herschel", "Neptune": "Johann Galle"}
    assert reference_strings(gold) == ["Uranus", "Sir William Herschel", "Neptune", "Johann Galle"]
    full = score(gold, "Uranus (William Herschel, 1781) and Neptune (Johann Galle, 1846).")
    assert full.strict and full.loose == 1.0 and full.missing == []
    half = score(gold, "Uranus was found by William Herschel.")
    assert not half.strict and half.loose == 0.5 and half.missing == ["Neptune", "Johann Galle"]
    assert score(["442241", "1276000"], "Miami: 442,241; Rosario: 1.28 million").loose == 1.0
    assert score(True, "Yes, it is.").strict and not score(False, "Yes, it is.").strict
