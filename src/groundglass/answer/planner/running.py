"""Running a plan: its steps in waves, and each step's placeholders filled with earlier answers."""

from __future__ import annotations

from collections.abc import Mapping

from groundglass.answer import querytext
from groundglass.answer.planner.steps import ANSWER_MAX_WORDS, PLACEHOLDER, Plan, SubQuery


def waves(plan: Plan) -> list[list[SubQuery]]:
    """The steps in layers: each wave holds the steps whose dependencies are all in earlier waves (search
    a wave's steps in parallel). Dependencies on unknown ids are ignored; a cycle (impossible after
    ``validate_plan``) ends up in one last wave."""
    known = {s.id for s in plan.steps}
    placed: set[str] = set()
    remaining = list(plan.steps)
    out: list[list[SubQuery]] = []
    while remaining:
        wave = [s for s in remaining if all(d in placed or d not in known for d in s.depends_on)]
        if not wave:
            out.append(remaining)
            break
        out.append(wave)
        placed.update(s.id for s in wave)
        remaining = [s for s in remaining if s.id not in placed]
    return out


def short_answer(text: str, max_words: int = ANSWER_MAX_WORDS) -> str:
    """A partial answer made fit for a search query: first sentence, no citations, at most ``max_words``."""
    sentence = querytext.first_sentence(text).rstrip(" .!?")
    ws = sentence.split()
    return " ".join(ws[:max_words])


def resolve(step: SubQuery, answers: Mapping[str, str], plan: Plan | None = None) -> str:
    """``step.query`` with each placeholder ``{sN}`` replaced by step sN's short answer. A step without an
    answer (failed, or nothing found) is replaced by its own resolved query when ``plan`` is given,
    else removed. Answers of dependencies the query does not mention are appended (their words that
    the query lacks)."""
    by_id = {s.id: s for s in plan.steps} if plan is not None else {}

    def value(ref: str, depth: int = 0) -> str:
        answer = short_answer(answers.get(ref, "") or "")
        if answer:
            return answer
        if ref in by_id and depth < 8:
            inner = by_id[ref]
            return PLACEHOLDER.sub(lambda m: value(m.group(1).lower(), depth + 1), inner.query)
        return ""

    mentioned = {m.lower() for m in PLACEHOLDER.findall(step.query)}
    text = PLACEHOLDER.sub(lambda m: value(m.group(1).lower()), step.query)
    for d in step.depends_on:
        if d not in mentioned:
            text = f"{text} {_new_words(short_answer(answers.get(d, '') or ''), text)}"
    return " ".join(text.split())


def _new_words(answer: str, query: str) -> str:
    """The words of ``answer`` that ``query`` lacks (stop words left out), in order: what appending an
    answer to a query adds. A partial answer often restates its own query ("Lionel Messi last played
    club soccer in 2025"); appended whole, it would double the dependent query."""
    have = querytext.content_stems(query)

    def adds(token: str) -> bool:
        return any(
            w not in querytext.STOPWORDS and querytext.stem(w) not in have for w in querytext.words(token)
        )

    return " ".join(token for token in answer.split() if adds(token))
