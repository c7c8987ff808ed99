"""A clean plan from whatever the model returned: :func:`validate_plan`.

Small models write steps unrelated to the question, repeat queries, reuse ids, depend on steps that
do not exist or on one another in a cycle; the plan that comes out keeps what makes sense, in an
order where each step follows what it needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from groundglass.answer import querytext
from groundglass.answer.planner.steps import PLACEHOLDER, Plan, SubQuery, clean_query

_SYNTHESIS_WORDS = frozenset(
    """compare comparison difference differences versus vs between older newer
younger larger bigger smaller taller shorter higher lower longer more less better worse earlier later
first sum total add subtract calculate""".split()
)


def _related(query: str, question: str) -> bool:
    """A step worth searching: it uses a placeholder, or shares a content word with the question."""
    if PLACEHOLDER.search(query):
        return True
    return bool(querytext.content_stems(query) & querytext.content_stems(question))


def _synthesis(query: str) -> bool:
    """A step that only compares or computes earlier answers ("compare {s1} and {s2}"): nothing to search
    for; the answer does that."""
    if not PLACEHOLDER.search(query):
        return False
    return not set(querytext.content_words(PLACEHOLDER.sub(" ", query))) - _SYNTHESIS_WORDS


def validate_plan(raw: Any, question: str, max_steps: int) -> Plan | None:
    """A clean plan from whatever the model returned, or None when nothing usable is in it.

    Accepts ``{"steps": [...]}`` or a bare list; each step a dict with ``query`` (ids and dependencies
    optional) or a plain string. Drops steps without a usable query, unrelated to the question, or
    repeating an earlier query (dependencies on a dropped repeat move to the kept one) or only comparing
    earlier answers ("compare {s1} and {s2}": the answer step does that); renames
    missing or repeated ids; drops unknown and self dependencies; adds dependencies that placeholders
    imply; breaks cycles; orders steps so each comes after what it needs; keeps ``max_steps``."""
    items = raw.get("steps") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        return None
    steps: list[SubQuery] = []
    alias: dict[str, str] = {}  # id as the model wrote it -> id kept
    seen_queries: dict[str, str] = {}
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"query": item}
        if not isinstance(item, dict):
            continue
        query = item.get("query")
        if not isinstance(query, str) or len(clean_query(query)) < 3:
            continue
        query = clean_query(query)
        raw_id = str(item.get("id") or f"s{i + 1}").strip().lower()
        key = querytext.normalize(query)
        if key in seen_queries:  # a repeat: point its id at the first one
            alias.setdefault(raw_id, seen_queries[key])
            continue
        if not _related(query, question) or _synthesis(query):
            continue
        new_id = f"t{len(steps) + 1}"  # provisional; renumbered s1.. once ordered
        alias.setdefault(raw_id, new_id)
        seen_queries[key] = new_id
        deps = item.get("depends_on")
        if not isinstance(deps, list):
            deps = []
        deps = [str(d).strip().lower() for d in deps if isinstance(d, (str, int))]
        steps.append(SubQuery(new_id, query, deps))
    if not steps:
        return None
    known = {s.id for s in steps}
    for s in steps:
        refs = [alias.get(m.lower(), "") for m in PLACEHOLDER.findall(s.query)]
        wanted = [alias.get(d, "") for d in s.depends_on] + refs
        s.depends_on = list(dict.fromkeys(d for d in wanted if d in known and d != s.id))
        s.query = PLACEHOLDER.sub(lambda m: "{" + alias.get(m.group(1).lower(), "?") + "}", s.query)
    ordered = _topological(steps)[:max_steps]
    final = {s.id: f"s{i}" for i, s in enumerate(ordered, start=1)}
    for s in ordered:  # placeholders of steps that did not survive are removed rather than left as "{?}"
        s.depends_on = [final[d] for d in s.depends_on if d in final]
        s.query = PLACEHOLDER.sub(
            lambda m: "{" + final[m.group(1).lower()] + "}" if m.group(1).lower() in final else "",
            s.query.replace("{?}", ""),
        )
        s.query = " ".join(s.query.split())
        s.id = final[s.id]
    return Plan(ordered, "model")


def _unmet_refs(step: SubQuery, placed: set[str]) -> set[str]:
    return {m.lower() for m in PLACEHOLDER.findall(step.query)} - placed


def _inline_refs(step: SubQuery, refs: set[str], by_id: Mapping[str, SubQuery]) -> None:
    """Replace the placeholders ``refs`` in ``step.query`` with the referenced steps' own queries."""

    def inline(m: re.Match[str]) -> str:
        ref = m.group(1).lower()
        if ref in refs and ref in by_id:
            return PLACEHOLDER.sub("", by_id[ref].query)
        return m.group(0)

    step.query = " ".join(PLACEHOLDER.sub(inline, step.query).split())


def _topological(steps: list[SubQuery]) -> list[SubQuery]:
    """``steps`` in an order where each follows its dependencies (stable: the model's order where it
    allows). A cycle is broken at the earliest waiting step whose unmet dependencies are not used as
    placeholders (else the earliest waiting step, its unmet placeholders replaced by those steps' queries)."""
    by_id = {s.id: s for s in steps}
    done: list[SubQuery] = []
    placed: set[str] = set()
    waiting = list(steps)
    while waiting:
        ready = [s for s in waiting if all(d in placed for d in s.depends_on)]
        if not ready:  # a cycle
            free = next((s for s in waiting if not _unmet_refs(s, placed)), waiting[0])
            _inline_refs(free, _unmet_refs(free, placed), by_id)
            free.depends_on = [d for d in free.depends_on if d in placed]
            continue
        for s in ready:
            done.append(s)
            placed.add(s.id)
        waiting = [s for s in waiting if s.id not in placed]
    assert len(done) == len(by_id)
    return done
