"""FanOutQA dev set, shared by the benchmarks: the questions, their decompositions and the Wikipedia
pages they need, matched against the titles of the built-in corpus (``builtin:wikipedia``).

Not a benchmark itself (no ``bench_`` prefix, so ``python -m bench`` does not run it).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any


@cache
def dev_questions() -> list[dict[str, Any]]:
    """The 310 FanOutQA dev questions, as the package ships them (``fanout-final-dev.json``)."""
    spec = importlib.util.find_spec("fanoutqa")
    assert spec and spec.submodule_search_locations, "fanoutqa is not installed (make setup-test)"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "fanout-final-dev.json"
    return json.loads(path.read_text(encoding="utf-8"))


def walk(q: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a question's decomposition, depth first (the question itself excluded)."""
    for d in q.get("decomposition") or []:
        yield d
        yield from walk(d)


def needed_pages(q: dict[str, Any]) -> list[str]:
    """Titles of the evidence pages of a question's decomposition, each once, in order."""
    titles = [(d.get("evidence") or {}).get("title") for d in walk(q)]
    return list(dict.fromkeys(t for t in titles if t))


def subquestions(titles: set[str]) -> list[tuple[str, str]]:
    """(sub-question, evidence page title) for dev sub-questions whose page is in ``titles``."""
    out = []
    for q in dev_questions():
        for d in walk(q):
            ev = d.get("evidence") or {}
            if ev.get("title") in titles:
                out.append((d["question"], ev["title"]))
    return out


def questions_in_corpus(titles: set[str]) -> list[dict[str, Any]]:
    """Dev questions whose needed pages are all in ``titles`` (8 of 310 for the 10k summaries)."""
    out = []
    for q in dev_questions():
        pages = needed_pages(q)
        if pages and all(t in titles for t in pages):
            out.append(q)
    return out
