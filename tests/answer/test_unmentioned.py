"""Which name a question asks about, and whether its sources mention it in a form reference pages use."""

from __future__ import annotations

import pytest

from groundglass.answer.types import Source
from groundglass.answer.unmentioned import asked_name, unmentioned_name


def _src(text: str, title: str = "Reference") -> Source:
    return Source(url="https://docs.test/page.html", title=title, text=text)


@pytest.mark.parametrize(
    ("question", "name"),
    [
        ("What is the default value of RewriteMaxRules in mod_rewrite?", "RewriteMaxRules"),
        ("What does the %q substitution of sqlite3_mprintf() do?", None),  # a format code: the gate's
        ("Where in httpd.conf is KeepAliveTimeout set?", None),  # where a setting lives, not what
        ("Is KeepAliveTimeout set in httpd.conf?", "KeepAliveTimeout"),
        ("Which sqlite3 dot-command does .autosave stand for?", "sqlite3"),
        ("What is a good default, e.g. for a small server?", None),
        ("What is the capital of France?", None),
    ],
)
def test_the_name_a_question_asks_about(question: str, name: str | None) -> None:
    assert asked_name(question) == name


def test_a_name_no_source_mentions_is_reported() -> None:
    sources = [_src("RewriteRule: Defines rules for the rewriting engine. Default: None", "mod_rewrite")]
    question = "What is the default value of RewriteMaxRules in mod_rewrite?"
    assert unmentioned_name(question, sources) == "RewriteMaxRules"


@pytest.mark.parametrize(
    ("question", "text"),
    [
        # a call by its name, with its arguments
        ("What does SQLite's instr() function return when nothing is found?", "instr(X,Y) returns 0 when"),
        # a dotted name by its last part, as a table of members writes it
        ("Which status code does http.HTTPStatus.IM_A_TEAPOT have?", "| 418 | IM_A_TEAPOT | I'm a teapot |"),
        # case as the page writes it
        ("What is the default of keepalivetimeout?", "KeepAliveTimeout Directive. Default: 5"),
        # in the title only
        ("What does PRAGMA cache_size set?", "Sets the suggested maximum number of pages"),
    ],
)
def test_a_name_the_sources_write_their_own_way_is_mentioned(question: str, text: str) -> None:
    title = "PRAGMA cache_size" if "cache_size" in question else "Reference"
    assert unmentioned_name(question, [_src(text, title)]) is None


def test_a_name_inside_a_longer_one_is_not_mentioned() -> None:
    # "KeepAlive" is in "KeepAliveTimeout", but that is another directive
    assert unmentioned_name("What does KeepAlive default to?", [_src("KeepAliveTimeout: 5")]) == "KeepAlive"
