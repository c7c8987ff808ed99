"""Reasoning effort presets: the levels, their order, per-model rules from code and config, bad names."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from groundglass.answer.effort import EFFORTS, MIN_CONTEXT_TOKENS, PRESETS, check_effort, preset_for
from groundglass.config import load_settings
from groundglass.errors import GroundglassError


def test_more_effort_never_buys_less() -> None:
    levels = [PRESETS[name] for name in EFFORTS]
    for lower, higher in itertools.pairwise(levels):
        assert higher.max_sub_queries >= lower.max_sub_queries
        assert higher.max_rounds >= lower.max_rounds
        assert higher.context_tokens >= lower.context_tokens
        assert higher.answer_max_tokens >= lower.answer_max_tokens
    assert not PRESETS["minimal"].plans and PRESETS["low"].plans
    assert PRESETS["high"].max_rounds > 1 and PRESETS["high"].answer_style == "report"


@pytest.mark.parametrize("name", ["max", "extreme", "", "none"])
def test_unknown_effort_lists_the_valid_ones(name: str) -> None:
    with pytest.raises(GroundglassError) as err:
        preset_for(name, "default")
    assert err.value.param == "reasoning_effort"
    assert "minimal, low, medium, high" in str(err.value)


def test_effort_names_are_case_and_space_insensitive() -> None:
    assert check_effort(" HIGH ") == "high"
    assert preset_for("Medium", "any-model").name == "medium"


def test_default_effort_comes_from_the_server_preset_then_the_setting(tmp_path: Path) -> None:
    assert preset_for(None, "whatever").name == "minimal"  # no settings
    assert preset_for(None, "my-local-model", load_settings(home=str(tmp_path))).name == "minimal"
    settings = load_settings(home=str(tmp_path), reasoning={"default_effort": "medium"})
    assert preset_for(None, "my-local-model", settings).name == "medium"
    assert preset_for(None, "sonar", settings).name == "minimal"  # server.models["sonar"]
    assert preset_for(None, "sonar-pro", settings).name == "low"
    assert preset_for(None, "sonar-deep-research", settings).name == "high"


def test_builtin_rules_for_sonar_names() -> None:
    assert preset_for("high", "sonar").think is False
    assert preset_for("minimal", "sonar-reasoning-pro").think is True
    assert preset_for("high", "local").think is True  # the level's own value


def test_config_rules_apply_from_glob_to_exact_name(tmp_path: Path) -> None:
    settings = load_settings(
        home=str(tmp_path),
        reasoning={
            "models": {
                "*": {"high": {"max_sub_queries": 4, "related_questions": False}},
                "qwen*": {"high": {"max_sub_queries": 3}},
                "qwen-small": {"high": {"max_sub_queries": 2}, "low": {"max_sub_queries": 1}},
            }
        },
    )
    assert preset_for("high", "llama", settings).max_sub_queries == 4
    assert preset_for("high", "qwen-big", settings).max_sub_queries == 3
    small = preset_for("high", "qwen-small", settings)
    assert small.max_sub_queries == 2 and small.related_questions is False  # "*" still applies
    assert not preset_for("low", "qwen-small", settings).plans
    assert preset_for("medium", "qwen-small", settings) == PRESETS["medium"]


def test_config_rejects_unknown_fields_and_levels(tmp_path: Path) -> None:
    with pytest.raises(GroundglassError, match=r"reasoning\.models"):
        load_settings(home=str(tmp_path), reasoning={"models": {"x": {"high": {"max_subqueries": 3}}}})
    with pytest.raises(GroundglassError, match=r"reasoning\.models"):
        load_settings(home=str(tmp_path), reasoning={"models": {"x": {"ultra": {"max_sub_queries": 3}}}})


def test_fit_shrinks_sources_then_answer_to_the_context() -> None:
    high = PRESETS["high"]
    assert high.fit(32768) is high
    fitted = high.fit(4096)
    assert fitted.context_tokens + fitted.answer_max_tokens + 512 <= 4096
    assert fitted.answer_max_tokens == high.answer_max_tokens  # sources give way first
    tiny = high.fit(2048)
    assert tiny.context_tokens == MIN_CONTEXT_TOKENS
    assert tiny.context_tokens + tiny.answer_max_tokens + 512 <= 2048
