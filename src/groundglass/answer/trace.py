"""The visible reasoning of one answer: ``<think>`` lines as the work happens, and its structured form.

With a trace (the effort's ``think``), the answer's text starts with a block like Sonar's reasoning
models write::

    <think>
    The follow-up asks: When did William Shakespeare die?
    s1: searched "William Shakespeare death" -> 3 source(s): William Shakespeare. Found: ...
    </think>

Each line streams as its step finishes. :meth:`Trace.summary` gives the same facts as data for the
JSON (``reasoning``): the effort, the query searched, how a follow-up was rewritten, whether earlier
sources were reused, the plan and each step with its query, sources, partial answer and time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from groundglass.answer.events import Token

if TYPE_CHECKING:
    from groundglass.answer.conversation import Coverage, RewriteResult
    from groundglass.answer.effort import EffortPreset
    from groundglass.answer.research import Research, Step
    from groundglass.answer.retrieve import Found


class Trace:
    def __init__(self, think: bool) -> None:
        self.think = think
        self.text = ""  # what was emitted, to put at the start of the answer's content
        self.rewrite: RewriteResult | None = None
        self.coverage: Coverage | None = None

    def _line(self, line: str) -> Iterator[Token]:
        if self.think:
            piece = line + "\n"
            self.text += piece
            yield Token(piece)

    def open(self) -> Iterator[Token]:
        yield from self._line("<think>")

    def rewritten(self, rewrite: RewriteResult | None) -> Iterator[Token]:
        self.rewrite = rewrite
        if rewrite is not None and rewrite.rewritten:
            yield from self._line(f"The follow-up asks: {rewrite.query}")

    def reuse(self, coverage: Coverage | None, reused: bool) -> Iterator[Token]:
        self.coverage = coverage
        if coverage is None:
            return
        if reused:
            yield from self._line(
                f"The sources of earlier turns answer this (similarity "
                f"{coverage.best:.2f}): {len(coverage.kept)} reused, no new search."
            )
        else:
            yield from self._line(f"Earlier sources still relevant: {len(coverage.kept)}; searching afresh.")

    def step(self, step: Step) -> Iterator[Token]:
        yield from self._line(step.trace_line())

    def searched(self, found: Found) -> Iterator[Token]:
        titles = "; ".join(dict.fromkeys(s.title for s in found.sources[:5])) or "nothing"
        queries = "; ".join(f'"{q}"' for q in found.queries)
        yield from self._line(f"Searched {queries} -> {len(found.sources)} candidate(s): {titles}.")

    def close(self) -> Iterator[Token]:
        if self.think:
            self.text += "</think>\n\n"
            yield Token("</think>\n\n")

    def summary(
        self, effort: EffortPreset, query: str, research: Research | None, reused: bool, shown: bool
    ) -> dict[str, Any] | None:
        """The reasoning as data; None for a plain one-search question (nothing to show)."""
        if not (shown or research or reused or self.rewrite or self.coverage):
            return None
        out: dict[str, Any] = {"effort": effort.name, "query": query, "reused_sources": reused}
        if self.rewrite is not None:
            out["rewrite"] = {
                "query": self.rewrite.query,
                "rewritten": self.rewrite.rewritten,
                "method": self.rewrite.method,
                "reason": self.rewrite.reason,
            }
        if self.coverage is not None:
            out["earlier_sources"] = {"best_similarity": self.coverage.best, "kept": len(self.coverage.kept)}
        if research is not None:
            out["plan"] = {"source": research.plan_source, "note": research.plan_note}
            out["steps"] = [s.as_dict() for s in research.steps]
        return out
