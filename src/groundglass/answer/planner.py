"""The planner: a question -> sub-queries with dependencies, searched in waves.

    plan(llm, question, preset) -> Plan(steps=[SubQuery(id, query, depends_on)], source)
    waves(plan)                 -> [[independent steps], [steps that need the first wave], ...]
    resolve(step, answers)      -> the step's query with the earlier answers filled in
    needs_more(llm, question, findings, ...) -> follow-up queries when evidence is missing

Placeholders: a query refers to the answer of an earlier step as ``{s1}`` (the step's id in braces),
e.g. ``s1`` "country where the Eiffel Tower is", ``s2`` "capital of {s1}" (depends on s1). The
prompt teaches this with one example; :func:`resolve` replaces each placeholder with that step's
short answer (or, when the step found nothing, with the step's own query).

Robust with small models: the model writes under a JSON-schema grammar (``complete_json``),
so its output always parses; :func:`validate_plan` then takes whatever came back (also JSON-ish input
from an unconstrained endpoint) and keeps only what makes sense: steps with a query that shares a
word with the question or uses a placeholder (but does more than compare placeholders), unique ids
and queries, known dependencies, no cycles, at most the preset's number of steps, in dependency
order. A model error or nothing usable left gives
:func:`fallback_plan`, a plan without a model: a comparison ("Which is older, X or Y?", "X vs Y") or
a question of two clauses joined by "and" is split, anything else is searched as asked. ``plan``
never raises for model trouble.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from groundglass.answer import querytext
from groundglass.answer.effort import EffortPreset
from groundglass.answer.llm.base import LLM, ChatMessage, Completion
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

log = get_logger(__name__)

PlanSource = Literal["model", "fallback", "single"]
QUERY_MAX_CHARS = 160
ANSWER_MAX_WORDS = 12  # of a partial answer filled into a dependent query
PLACEHOLDER = re.compile(r"\{\{?\s*([sStT]\d{1,2})\s*\}?\}")


@dataclass
class SubQuery:
    id: str  # "s1", "s2", ...
    query: str  # may contain placeholders like {s1}
    depends_on: list[str] = field(default_factory=list)


@dataclass
class Plan:
    steps: list[SubQuery]
    source: PlanSource  # model: the model's plan, validated; fallback: no usable plan from the model;
    # single: no planning call (minimal effort, or one sub-query allowed)
    reason: str = ""  # why the fallback was used (for the trace)
    seconds: float = 0.0  # model time

    @property
    def queries(self) -> list[str]:
        return [s.query for s in self.steps]


# --- the prompt and the schema ------------------------------------------------------------------------------

PLAN_SYSTEM = (
    "Split the question into the searches needed to answer it, at most {n}. Each step has an id (s1, s2, "
    "...), a short search query, and depends_on: the ids of the steps whose answers it needs. Write {{s1}} "
    "in a query where the answer of step s1 goes. Steps that need no other answer have depends_on []. "
    "Search only for facts: comparing or computing is done after the searches. Do not assume any fact "
    "the question does not state: search for it. If one search is enough, write one step. Reply in JSON.\n"
    'Example: "How old was the director of Jaws when it was released?" -> {{"steps": ['
    '{{"id": "s1", "query": "director of Jaws", "depends_on": []}}, '
    '{{"id": "s2", "query": "Jaws release year", "depends_on": []}}, '
    '{{"id": "s3", "query": "birth date of {{s1}}", "depends_on": ["s1"]}}]}}\n'
    'Example: "Which is longer, the Nile or the Amazon?" -> {{"steps": ['
    '{{"id": "s1", "query": "length of the Nile", "depends_on": []}}, '
    '{{"id": "s2", "query": "length of the Amazon", "depends_on": []}}]}}'
)


def step_ids(n: int) -> list[str]:
    return [f"s{i}" for i in range(1, n + 1)]


def plan_schema(max_steps: int) -> dict[str, Any]:
    """JSON schema of a plan of at most ``max_steps`` steps (ids s1..sN)."""
    ids = step_ids(max_steps)
    return {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"enum": ids},
                        "query": {"type": "string", "minLength": 3, "maxLength": QUERY_MAX_CHARS},
                        "depends_on": {"type": "array", "maxItems": max_steps, "items": {"enum": ids}},
                    },
                    "required": ["id", "query", "depends_on"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def plan_max_tokens(max_steps: int) -> int:
    """Enough tokens for ``max_steps`` steps of the longest allowed query (~4 characters a token)."""
    return 24 + max_steps * (QUERY_MAX_CHARS // 3 + 24)


def plan_messages(
    question: str, max_steps: int, history: Sequence[ChatMessage] | None = None
) -> list[ChatMessage]:
    user = f"Question: {question.strip()}"
    earlier = [m.content for m in (history or []) if m.role == "user"][-2:]
    if earlier:
        context = " / ".join(" ".join(t.split())[:200] for t in earlier)
        user = f"Earlier questions (context only): {context}\n{user}"
    return [ChatMessage("system", PLAN_SYSTEM.format(n=max_steps)), ChatMessage("user", user)]


# --- planning ---------------------------------------------------------------------------------------------


def single_plan(question: str) -> Plan:
    return Plan([SubQuery("s1", " ".join(question.split()), [])], "single")


def plan(
    llm: LLM,
    question: str,
    preset: EffortPreset,
    *,
    history: Sequence[ChatMessage] | None = None,
    completion: Completion | None = None,
) -> Plan:
    """The sub-queries for ``question`` under ``preset`` (``question`` should be standalone: rewrite a
    follow-up first). No model call when the preset allows one sub-query. Never raises for model
    trouble: a failed or unusable plan becomes :func:`fallback_plan`."""
    question = " ".join(question.split())
    if not preset.plans:
        return single_plan(question)
    n = preset.max_sub_queries
    started = time.perf_counter()
    try:
        raw = llm.complete_json(
            plan_messages(question, n, history),
            plan_schema(n),
            max_tokens=plan_max_tokens(n),
            temperature=0.0,
            completion=completion,
        )
    except GroundglassError as exc:
        result = fallback_plan(question, n, reason=f"the model failed: {exc.message}")
    else:
        validated = validate_plan(raw, question, n)
        result = (
            validated
            if validated is not None
            else fallback_plan(question, n, reason="the model's plan had no usable step")
        )
    result.seconds = round(time.perf_counter() - started, 3)
    if result.source == "fallback":
        log.info("plan_fallback", reason=result.reason)
    return result


def _clean_query(text: str) -> str:
    text = " ".join(text.split()).strip(" \"'")
    return text[:QUERY_MAX_CHARS]


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
        if not isinstance(query, str) or len(_clean_query(query)) < 3:
            continue
        query = _clean_query(query)
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


# --- the plan without a model ---------------------------------------------------------------------------

_COMPARISON = re.compile(
    r"^(?P<head>(?:which|who|what)\b[^,]*?),?\s+(?P<a>[^,]+?)\s+or\s+(?P<b>[^,?]+?)\s*\??$", re.IGNORECASE
)
_VERSUS = re.compile(r"^(?P<a>.+?)\s+(?:vs\.?|versus)\s+(?P<b>.+?)\s*\??$", re.IGNORECASE)
_COMPARE = re.compile(
    r"^(?:compare|what(?:'s| is| are) the differences? between|how does)\s+(?P<a>.+?)\s+(?:and|with|to|"
    r"compare to|differ from)\s+(?P<b>.+?)\s*\??$",
    re.IGNORECASE,
)
_QUESTION_START = (
    "who",
    "what",
    "when",
    "where",
    "which",
    "why",
    "how",
    "did",
    "does",
    "do",
    "is",
    "was",
    "are",
    "were",
    "has",
    "have",
    "can",
    "in",
)
_AND_QUESTION = re.compile(r",?\s+and\s+(?=(?:" + "|".join(_QUESTION_START) + r")\b)", re.IGNORECASE)
_HEAD_WORDS = re.compile(
    r"^(?:which|who|what)\s+(?:one\s+)?(?:is|was|are|were|has|had|did|does)?\s*", re.IGNORECASE
)


def _steps(queries: Iterable[str], question: str, max_steps: int) -> list[SubQuery]:
    out: list[SubQuery] = []
    seen: set[str] = set()
    for q in queries:
        q = _clean_query(q.strip(" ,;?"))
        if len(q) < 3 or querytext.normalize(q) in seen:
            continue
        seen.add(querytext.normalize(q))
        out.append(SubQuery(f"s{len(out) + 1}", q, []))
    return out[:max_steps] if len(out) > 1 else [SubQuery("s1", question, [])]


def part_queries(question: str) -> list[str]:
    """The question's parts as searches, without a model: two for "X and Y" questions and
    comparisons (see :func:`fallback_plan`), else []. Effort without planning searches these beside
    the question itself, so a two-part question reads the pages of both parts."""
    steps = fallback_plan(question, 2).steps
    return [s.query for s in steps] if len(steps) > 1 else []


def fallback_plan(question: str, max_steps: int, *, reason: str = "") -> Plan:
    """A plan without a model: split comparisons and "... and <question word> ..." questions, else one
    step, the question as asked."""
    q = " ".join(question.split())
    queries: list[str] = []
    if max_steps > 1:
        m = _COMPARISON.match(q)
        if m and len(querytext.words(m.group("a"))) <= 8 and len(querytext.words(m.group("b"))) <= 8:
            head = _HEAD_WORDS.sub("", m.group("head")).strip()
            queries = [f"{m.group('a')} {head}".strip(), f"{m.group('b')} {head}".strip()]
        elif (m := _COMPARE.match(q) or _VERSUS.match(q)) is not None:
            queries = [m.group("a"), m.group("b")]
        else:
            parts = _AND_QUESTION.split(q)
            if len(parts) > 1 and all(len(querytext.words(p)) >= 3 for p in parts):
                subject = querytext.entities(parts[0])
                queries = [parts[0]]
                for p in parts[1:]:
                    referring = querytext.is_referring(p)
                    extra = [e for e in subject if e.lower() not in p.lower()] if referring else []
                    queries.append(f"{p.strip(' ?')} {' '.join(extra)}".strip())
        if not queries:
            queries = split_coordinated(q)
    steps = _steps(queries, q, max_steps) if queries else [SubQuery("s1", q, [])]
    return Plan(steps, "fallback", reason=reason)


_AUXILIARY = frozenset("is are was were do does did has have had can".split())
_QUOTED = re.compile(r"^['\"‘“].+['\"’”][,.;:]?$")


def _names_something(word: str, first: bool) -> bool:
    """Whether ``word`` carries a name: a verbatim term (``SMTP.connect``, ``-m``), a quoted token, a
    number, a capitalised word (not the question's first), or a possessive (``smtplib's``)."""
    bare = word.strip("?,;:")
    return bool(
        querytext.literal_terms(bare)
        or _QUOTED.match(bare)
        or bare[:1].isdigit()
        or (bare[:1].isupper() and not first)
        or bare.lower().endswith(("'s", "’s"))
    )


def split_coordinated(question: str) -> list[str]:
    """One query per named thing when a question asks the same about two ("Which ports do
    smtplib's SMTP.connect and python -m http.server use by default?" -> "... do smtplib's SMTP.connect
    use by default", "... do python -m http.server use by default"), or two things that each carry
    their own head ("the default maxsize of functools.lru_cache and the default width of
    textwrap.wrap()" -> "What are the default maxsize of functools.lru_cache", "What are the default
    width of textwrap.wrap()"). Searched as one query, such a question finds the page of whichever
    name the search engine weighs more, and the answer misses the other half. [] when the question
    has no single "and" between two named things."""
    text = " ".join(question.split()).rstrip(" ?")
    halves = re.split(r",?\s+and\s+", text)
    if len(halves) != 2:
        return []
    left, right = halves[0].split(), halves[1].split()
    if len(left) < 2 or not right or right[0].lower() in _QUESTION_START:  # a second question: _AND_QUESTION
        return []
    # The left thing: the trailing words that are not stop words, from the first one that names something.
    start = len(left)
    while start > 0 and left[start - 1].lower() not in querytext.STOPWORDS:
        start -= 1
    while start < len(left) and not _names_something(left[start], start == 0):
        start += 1
    if start >= len(left) or start == 0:
        return []
    head, thing_a = left[:start], left[start:]
    # The right thing: leading stop words dropped ("of zlib.compress()", "the default width of ...").
    skip = 0
    while skip < len(right) and right[skip].lower() in querytext.STOPWORDS:
        skip += 1
    body = right[skip:]
    named = [i for i, w in enumerate(body) if _names_something(w, False)]
    if not named:
        return []
    before = body[: named[0]]
    if any(w.lower() in querytext.STOPWORDS for w in before):
        # "the default width of textwrap.wrap()": a phrase of its own; ask it with the question's opening.
        aux = next((i for i, w in enumerate(left) if w.lower() in _AUXILIARY), None)
        if aux is None:
            return []
        return [" ".join(left), " ".join(left[: aux + 1] + right)]
    run = 0
    while run < len(body) and body[run].lower() not in querytext.STOPWORDS:
        run += 1
    last = max(i for i in named if i < run) if any(i < run for i in named) else named[0]
    thing_b, tail = body[: last + 1], body[last + 1 :]
    return [" ".join(head + thing_a + tail), " ".join(head + thing_b + tail)]


# --- running a plan ---------------------------------------------------------------------------------------


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


# --- more rounds --------------------------------------------------------------------------------------------

MORE_SYSTEM = (
    "You check research notes. List search queries for the facts that the question needs and the "
    "findings do not give, at most {n}. If the findings already answer the question, reply with an "
    "empty list. Reply in JSON."
)


def more_schema(max_queries: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "missing": {
                "type": "array",
                "maxItems": max_queries,
                "items": {"type": "string", "minLength": 3, "maxLength": QUERY_MAX_CHARS},
            },
        },
        "required": ["missing"],
        "additionalProperties": False,
    }


def more_messages(question: str, findings: Mapping[str, str], max_queries: int) -> list[ChatMessage]:
    lines = []
    for query, answer in findings.items():
        found = short_answer(answer, 40) if answer and answer.strip() else "(nothing found)"
        lines.append(f"- {' '.join(query.split())}: {found}")
    user = (
        "Findings:\n"
        + "\n".join(lines or ["- (none)"])
        + f"\n\nQuestion: {' '.join(question.split())}\nWhich facts are still missing?"
    )
    return [ChatMessage("system", MORE_SYSTEM.format(n=max_queries)), ChatMessage("user", user)]


def needs_more(
    llm: LLM,
    question: str,
    findings: Mapping[str, str],
    *,
    max_queries: int = 2,
    asked: Iterable[str] = (),
    completion: Completion | None = None,
) -> list[str]:
    """New search queries for facts the findings (query -> partial answer, "" when nothing was found)
    still miss; an empty list means the evidence is enough, or the model failed (never raises for
    model trouble). Queries already ``asked`` (or in ``findings``), repeats and queries unrelated to
    the question and the findings are dropped."""
    if max_queries < 1:
        return []
    try:
        raw = llm.complete_json(
            more_messages(question, findings, max_queries),
            more_schema(max_queries),
            max_tokens=24 + max_queries * (QUERY_MAX_CHARS // 3 + 8),
            temperature=0.0,
            completion=completion,
        )
    except GroundglassError as exc:
        log.info("needs_more_failed", error=exc.message)
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("missing"), list):
        return []
    seen = {querytext.normalize(q) for q in [*asked, *findings]}
    context = " ".join([question, *findings, *findings.values()])
    out: list[str] = []
    for q in raw["missing"]:
        if not isinstance(q, str):
            continue
        q = _clean_query(q)
        key = querytext.normalize(q)
        if len(q) < 3 or key in seen or not querytext.content_stems(q) & querytext.content_stems(context):
            continue
        seen.add(key)
        out.append(q)
    return out[:max_queries]
