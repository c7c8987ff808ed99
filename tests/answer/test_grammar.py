"""Integer bounds in the JSON-schema grammar: the digit patterns match exactly the range's members."""

from __future__ import annotations

import re

import pytest

from groundglass.answer.llm.grammar import MAX_DIGITS, gbnf, integer_bounds, integer_rule


def as_regex(rule: str) -> re.Pattern[str]:
    """A GBNF expression of literals, character classes, counts, groups and alternation, as a regex."""
    return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), rule).replace(" ", ""))


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        (0, 2100),
        (1, 5),
        (7, 7),
        (10, 99),
        (13, 4567),
        (-250, 31),
        (-40, -3),
        (0, 0),
        (95, 1000),
        (199, 20001),
    ],
)
def test_a_range_matches_exactly_its_members(lo: int, hi: int) -> None:
    pattern = as_regex(integer_rule(lo, hi))
    for n in range(min(lo, 0) - 120, hi + 1300):
        assert bool(pattern.fullmatch(str(n))) == (lo <= n <= hi), n
    assert not pattern.fullmatch("-0") and not pattern.fullmatch("007")


def test_one_sided_ranges_stop_at_the_digit_cap() -> None:
    at_least = as_regex(integer_rule(42, None))
    assert [n for n in range(0, 500) if at_least.fullmatch(str(n))] == list(range(42, 500))
    assert at_least.fullmatch("9" * MAX_DIGITS) and not at_least.fullmatch("1" + "0" * MAX_DIGITS)
    at_most = as_regex(integer_rule(None, -5))
    assert [n for n in range(-300, 300) if at_most.fullmatch(str(n))] == list(range(-300, -4))


def test_exclusive_and_fractional_bounds_become_inclusive_integers() -> None:
    assert integer_bounds({"exclusiveMinimum": 0, "exclusiveMaximum": 10}) == (1, 9)
    assert integer_bounds({"minimum": 0.5, "maximum": 9.5}) == (1, 9)
    assert integer_bounds({"minimum": 3, "exclusiveMinimum": 5}) == (6, None)
    with pytest.raises(ValueError, match="no integer"):
        integer_rule(5, 4)


def test_the_schema_grammar_carries_the_bounds_and_llama_cpp_parses_it() -> None:
    from llama_cpp.llama_grammar import LlamaGrammar

    schema = {
        "type": "object",
        "properties": {"born": {"type": "integer", "minimum": 0, "maximum": 2100}, "n": {"type": "integer"}},
        "required": ["born", "n"],
    }
    text = gbnf(schema)
    born = next(line.split("::=", 1)[1] for line in text.splitlines() if line.startswith("born-kv"))
    rule = next(line.split("::=", 1)[1].strip() for line in text.splitlines() if line.startswith("born ::="))
    assert "born" in born and as_regex(rule.removesuffix("space").strip()).fullmatch("2100")
    assert not as_regex(rule.removesuffix("space").strip()).fullmatch("2101")
    LlamaGrammar.from_string(text, verbose=False)  # raises on a grammar llama.cpp cannot read
