"""An answer read off a printed signature (:mod:`groundglass.answer.extractive`)."""

from __future__ import annotations

from groundglass.answer.extractive import signature_default
from groundglass.answer.types import Source


def src(text: str, n: int) -> Source:
    return Source(url=f"https://docs.test/{n}", title=f"Doc {n}", text=text, score=0.5, doc_id=str(n))


PPRINT = src("- class pprint.PrettyPrinter(indent=1, width=80, depth=None, stream=None):", 1)
TEXTWRAP = src("- textwrap.fill(text, width=70, *, initial_indent='', placeholder=' [...]'):", 2)


def test_the_default_asked_about_is_read_off_the_signature_of_the_callable_asked_about() -> None:
    question = "What is the default width of textwrap.fill()?"
    assert (
        signature_default(question, [PPRINT, TEXTWRAP]) == "The default width of textwrap.fill() is 70. [2]"
    )
    # the callable named without parentheses
    assert signature_default("default indent of pprint.PrettyPrinter?", [TEXTWRAP, PPRINT]) == (
        "The default indent of pprint.PrettyPrinter() is 1. [2]"
    )


def test_nothing_is_read_off_without_one_default_asked_and_printed() -> None:
    assert signature_default("How does textwrap.fill() wrap text?", [TEXTWRAP]) is None  # no default asked
    assert (
        signature_default("What is the default width of textwrap.wrap()?", [TEXTWRAP]) is None
    )  # not printed
    # two defaults asked: one sentence would answer one of them
    both = "What are the default widths of pprint.PrettyPrinter and textwrap.fill()?"
    assert signature_default(both, [PPRINT, TEXTWRAP]) is None
    # a call in an example passes an argument; it is no signature
    example = src("Example: >>> textwrap.fill(text, width=40)", 1)
    assert signature_default("What is the default width of textwrap.fill()?", [example]) is None
    # None says nothing of what the default does: the prose explains it
    cache = src("@functools.lru_cache(maxsize=None)", 1)
    assert signature_default("What is the default maxsize of functools.lru_cache?", [cache]) is None
