"""Conversations: check the messages, rewrite a follow-up into a standalone query, fit the history into
the context, and decide which earlier sources still count.

- :func:`check_messages` rejects what cannot be answered (unknown roles, a system message in the middle,
  a conversation that does not end with the user) with a :class:`GroundglassError` (param ``messages``);
  :func:`normalize_messages` makes the rest regular (consecutive turns of one role merged, empty
  turns dropped, the last question kept apart): repeated roles are harmless, so they are not refused.
- :func:`standalone_query`: one search query per turn that needs no history ("and when did he die?" ->
  "When did William Shakespeare die?"). A first turn, or a follow-up that already names what it is
  about, is returned as is without a model call. Otherwise the model writes the query under a JSON
  schema (one short string), and the result is checked: it must keep most of the follow-up's content
  words (when it has two or more), invent at most one word that is in neither the follow-up nor the
  conversation (and no number: that is an answer, not a question), not repeat an earlier question,
  not turn a question into a statement (the model answered it), and, if the follow-up refers back
  ("he", "there", "what about..."), bring in a word from the conversation, unless the follow-up names
  its own subject and the rewrite keeps no pronoun or lead-in ("What about Mahatma Gandhi, what did
  he campaign for?" -> "What did Mahatma Gandhi campaign for?"). A rejected rewrite (or a model
  error) gives way to a fallback without a model: the follow-up plus the named entities of the
  previous turn (or, when it names none, of the latest earlier turn that does; numbers are answers,
  not subjects, and are left out).
- :func:`fit_history`: drop the oldest turns until the conversation fits a token budget.
- :func:`covered_by`: MiniLM cosines between the new query and the sources of earlier turns. Sources
  below :data:`RELEVANCE_FLOOR` are dropped (turn-level relevance filtering); the earlier sources are
  taken to answer the query, and no new search runs, when one of them reaches :data:`COVER_THRESHOLD`
  *and* holds every content word of the query (:func:`answers_query`).

Thresholds, calibrated with ``python -m bench.bench_reuse`` on FanOutQA dev sub-questions against the
chunks of their Wikipedia summary (its docstring has the figures of the run that set them):

- ``RELEVANCE_FLOOR = 0.3``: the engine's ``retrieval.min_relevance`` (chosen there to keep the gold
  passages); here it drops nearly every passage of an unrelated conversation and most of the passages
  of a sibling sub-question's page.
- ``COVER_THRESHOLD = 0.55`` with the words check. A wrong reuse answers from a page that lacks the
  fact; a missed one costs a search, so the check favours precision. Cosine alone cannot separate a
  page that answers from one about the same subject that does not; requiring the query's content
  words in the passage can, and it never reuses a sibling page. Higher thresholds lose right reuses
  faster than wrong ones. When the answer from reused sources still declines, the caller should
  search afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import numpy as np

from groundglass.answer import querytext
from groundglass.answer.llm.base import LLM, Completion
from groundglass.answer.types import ChatMessage, Source
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

log = get_logger(__name__)

ROLES = ("system", "user", "assistant")
RELEVANCE_FLOOR = 0.3
COVER_THRESHOLD = 0.55
MESSAGE_OVERHEAD_TOKENS = 8  # role header and separators of one message under a chat template

# --- checking ---------------------------------------------------------------------------------------------


def check_messages(messages: Sequence[ChatMessage]) -> None:
    """Raise :class:`GroundglassError` (param ``messages``) unless ``messages`` is a conversation that can
    be answered: roles system/user/assistant, system messages only at the start, string contents, and a
    last message from the user with some text. Repeated roles are accepted (see ``normalize_messages``)."""
    if not messages:
        raise GroundglassError(
            "messages is empty", 'send at least one message: [{"role": "user", ...}]', param="messages"
        )
    seen_other = False
    for i, m in enumerate(messages):
        role = getattr(m, "role", None)
        if role not in ROLES:
            raise GroundglassError(
                f"messages[{i}] has role {role!r}", "use one of system, user, assistant", param="messages"
            )
        if not isinstance(getattr(m, "content", None), str):
            raise GroundglassError(
                f"messages[{i}] ({role}) has no text content",
                "give each message a string content",
                param="messages",
            )
        if role == "system":
            if seen_other:
                raise GroundglassError(
                    f"messages[{i}] is a system message after the conversation started",
                    "put system messages first",
                    param="messages",
                )
        else:
            seen_other = True
    last = messages[-1]
    if last.role != "user":
        raise GroundglassError(
            f"the last message is from the {last.role}, not the user",
            "end the conversation with the user's question",
            param="messages",
        )
    if not last.content.strip():
        raise GroundglassError("the last user message is empty", "ask something", param="messages")


def normalize_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """``messages`` (already checked) made regular: one system message at most, consecutive turns of one
    role merged (blank line between), empty turns dropped, text stripped. The last message (the question
    to answer) is never merged into an earlier one, so the history before it may end with a user turn
    that got no answer."""
    out: list[ChatMessage] = []
    for i, m in enumerate(messages):
        text = m.content.strip()
        if not text:
            continue
        if out and out[-1].role == m.role and i < len(messages) - 1:
            out[-1] = ChatMessage(m.role, f"{out[-1].content}\n\n{text}")
        else:
            out.append(ChatMessage(m.role, text))
    return out


def split_turns(messages: Sequence[ChatMessage]) -> tuple[list[ChatMessage], list[ChatMessage], ChatMessage]:
    """(system messages, earlier turns, last user message) of a checked conversation."""
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    return system, rest[:-1], rest[-1]


# --- the standalone query ---------------------------------------------------------------------------------

RewriteMethod = Literal["single", "self_contained", "model", "fallback"]


@dataclass
class RewriteResult:
    query: str  # what to search for this turn
    rewritten: bool  # differs from the user's last message
    method: RewriteMethod  # single: first turn; self_contained: the follow-up names its subject; model;
    # fallback: follow-up + entities of the previous turn (the model failed or its rewrite was rejected)
    reason: str = ""  # why the fallback was used (for the trace)
    seconds: float = 0.0  # model time


REWRITE_SYSTEM = (
    "Rewrite the follow-up question so that it can be understood without the conversation: replace words "
    "like he, she, it, they, there and that with the names they refer to. Keep the other words. Do not "
    "answer the question. Reply in JSON."
)
REWRITE_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 3, "maxLength": 160}},
    "required": ["question"],
    "additionalProperties": False,
}
REWRITE_MAX_TOKENS = 64
HISTORY_TURNS = 4  # earlier messages shown to the rewriter
ANSWER_CHARS = 240  # of each earlier assistant answer: its first sentence, cut here


def _transcript(earlier: Sequence[ChatMessage]) -> str:
    lines = []
    for m in list(earlier)[-HISTORY_TURNS:]:
        if m.role == "user":
            lines.append(f"User: {' '.join(m.content.split())}")
        else:
            lines.append(f"Assistant: {querytext.first_sentence(m.content, ANSWER_CHARS)}")
    return "\n".join(lines)


def rewrite_messages(earlier: Sequence[ChatMessage], followup: str) -> list[ChatMessage]:
    """The prompt that asks the model for a standalone query."""
    user = f"Conversation:\n{_transcript(earlier)}\n\nFollow-up question: {followup.strip()}"
    return [ChatMessage("system", REWRITE_SYSTEM), ChatMessage("user", user)]


def check_rewrite(rewrite: str, followup: str, earlier: Sequence[ChatMessage]) -> str:
    """Empty when ``rewrite`` is an acceptable standalone form of ``followup``, else why not."""
    text = " ".join(rewrite.split())
    if len(text) < 3:
        return "the rewrite is empty"
    if len(querytext.words(text)) > 2 * len(querytext.words(followup)) + 16:
        return "the rewrite is too long"
    context = " ".join(m.content for m in list(earlier)[-HISTORY_TURNS:])
    follow_stems = querytext.content_stems(followup)
    known = follow_stems | querytext.content_stems(context)
    stems = querytext.content_stems(text)
    invented = stems - known
    if len(invented) > 1 or any(ch.isdigit() for w in invented for ch in w):
        return f"the rewrite invents words ({', '.join(sorted(invented))})"
    if len(follow_stems) >= 2 and len(stems & follow_stems) * 2 < len(follow_stems):
        return "the rewrite drops the follow-up's words"
    earlier_questions = {querytext.normalize(m.content) for m in earlier if m.role == "user"}
    if querytext.normalize(text) in earlier_questions:
        return "the rewrite repeats an earlier question"
    if followup.rstrip().endswith("?") and text.endswith("."):
        return "the rewrite answers the follow-up instead of asking it"
    if (
        querytext.is_referring(followup)
        and not (stems - follow_stems) & known
        and not _names_own_subject(text, followup)
    ):
        return "the rewrite does not name what the follow-up refers to"
    return ""


def _names_own_subject(rewrite: str, followup: str) -> bool:
    """A follow-up that names its own subject and asks something about it ("What about Mahatma Gandhi,
    what did he campaign for?") needs no word from the conversation: a rewrite without the lead-in and
    the pronouns ("What did Mahatma Gandhi campaign for?") is standalone. Not so for a bare name
    ("What about Einstein?"), which takes its question from the conversation."""
    if not _subject_names(followup) or len(querytext.content_stems(followup)) < 2:
        return False
    return not querytext.has_lead_in(rewrite) and not querytext.has_referring_word(rewrite)


def _subject_names(text: str) -> list[str]:
    """The named entities of ``text`` that can be a subject: bare numbers and dates ("1599 and 1601")
    are answers, not what a follow-up refers to."""
    return [e for e in querytext.entities(text) if any(t[:1].isupper() for t in e.split())]


def fallback_query(followup: str, earlier: Sequence[ChatMessage]) -> str:
    """The follow-up plus the named entities of the previous user turn (and the previous answer's first
    sentence) that it does not already mention; when those name nothing ("When was the play
    written?"), the entities of the latest earlier user turn that names some; else the previous user
    turn's content words."""
    users = [m.content for m in reversed(earlier) if m.role == "user"]
    previous_user = users[0] if users else ""
    previous_answer = next((m.content for m in reversed(earlier) if m.role == "assistant"), "")
    names = _subject_names(previous_user) + _subject_names(querytext.first_sentence(previous_answer))
    if not names:
        names = next((found for text in users[1:] if (found := _subject_names(text))), [])
    if not names:
        names = querytext.content_words(previous_user)[:6]
    have = querytext.content_stems(followup)
    extra: list[str] = []
    for name in names:
        if querytext.content_stems(name) - have and name.lower() not in (e.lower() for e in extra):
            extra.append(name)
    base = " ".join(followup.split())
    for lead in ("and ", "also ", "so ", "but "):
        if base.lower().startswith(lead):
            base = base[len(lead) :]
    base = base[:1].upper() + base[1:]
    return f"{base} ({', '.join(extra[:4])})" if extra else base


def standalone_query(
    llm: LLM,
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int = REWRITE_MAX_TOKENS,
    completion: Completion | None = None,
) -> RewriteResult:
    """The search query for the last user message of ``messages`` (a checked conversation).

    Never raises for model trouble: a failed or rejected rewrite falls back (``method="fallback"``)."""
    rest = [m for m in messages if m.role != "system"]
    if not rest:
        raise GroundglassError(
            "no user message to answer", "end the conversation with the user's question", param="messages"
        )
    followup = " ".join(rest[-1].content.split())
    earlier = rest[:-1]
    if not any(m.role == "user" for m in earlier):
        return RewriteResult(followup, False, "single")
    if querytext.is_self_contained(followup):
        return RewriteResult(followup, False, "self_contained")
    started = time.perf_counter()
    reason = ""
    try:
        value = llm.complete_json(
            rewrite_messages(earlier, followup),
            REWRITE_SCHEMA,
            max_tokens=max_tokens,
            temperature=0.0,
            completion=completion,
        )
        query = " ".join(str(value["question"]).split())
        reason = check_rewrite(query, followup, earlier)
    except GroundglassError as exc:
        query, reason = "", f"the model failed: {exc.message}"
    seconds = round(time.perf_counter() - started, 3)
    if not reason:
        changed = querytext.normalize(query) != querytext.normalize(followup)
        return RewriteResult(query, changed, "model", seconds=seconds)
    log.info("rewrite_fallback", reason=reason, rewrite=query)
    fallback = fallback_query(followup, earlier)
    return RewriteResult(
        fallback,
        querytext.normalize(fallback) != querytext.normalize(followup),
        "fallback",
        reason=reason,
        seconds=seconds,
    )


# --- fitting the history ----------------------------------------------------------------------------------


class _Turn(Protocol):
    role: str
    content: str


T = TypeVar("T", bound=_Turn)


def fit_history(
    messages: Sequence[T],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    *,
    overhead_tokens: int = MESSAGE_OVERHEAD_TOKENS,
) -> list[T]:
    """``messages`` without their oldest turns, so that all of it costs at most ``budget_tokens``
    (``count_tokens`` of each content + ``overhead_tokens`` per message). System messages and the last
    message are always kept; what remains of the history starts with a user turn.

    Raises :class:`GroundglassError` (param ``messages``) when the system messages and the last message
    alone do not fit."""
    if not messages:
        return []

    def cost(m: _Turn) -> int:
        return count_tokens(m.content) + overhead_tokens

    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    last = rest[-1] if rest else None
    fixed = sum(cost(m) for m in system) + (cost(last) if last is not None else 0)
    if fixed > budget_tokens:
        what = "the last message" if not system else "the system message and the last message"
        raise GroundglassError(
            f"{what} need {fixed} tokens, more than the {budget_tokens} the model's context leaves for the "
            "conversation",
            "shorten the question (or the system message), or use a model with a longer "
            "context (llm.context_length)",
            param="messages",
        )
    kept: list[T] = []
    used = fixed
    for m in reversed(rest[:-1]):
        c = cost(m)
        if used + c > budget_tokens:
            break
        kept.append(m)
        used += c
    kept.reverse()
    while kept and kept[0].role != "user":  # a history that starts mid-exchange confuses the model
        kept.pop(0)
    return [*system, *kept, *([last] if last is not None else [])]


# --- earlier sources ----------------------------------------------------------------------------------------


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class Coverage:
    covered: bool  # the earlier sources answer the query: reuse them, no new search
    best: float  # highest cosine between the query and an earlier source (0 when there are none)
    kept: list[Source] = field(default_factory=list)  # earlier sources still relevant, most similar first
    scores: list[float] = field(default_factory=list)  # cosine of each kept source


def _passage(source: Source) -> str:
    return f"{source.title}\n{source.text}"


def source_similarity(sources: Sequence[Source], query: str, embedder: Embedder | None = None) -> np.ndarray:
    """MiniLM cosine between ``query`` and each source's title + text."""
    if not sources:
        return np.zeros(0, dtype=np.float32)
    if embedder is None:
        from groundglass.answer.embeddings import get_embedder

        embedder = get_embedder()
    vecs = embedder.encode([query, *(_passage(s) for s in sources)])
    return vecs[1:] @ vecs[0]


def answers_query(
    similarity: float, query: str, text: str, *, cover_threshold: float = COVER_THRESHOLD
) -> bool:
    """Whether one passage (``text``, cosine ``similarity`` with ``query``) likely answers ``query``: close
    enough, and holding every content word of the query (crude stems). Cosine alone cannot tell a page
    about the right subject that lacks the asked fact from one that has it; the words can, often."""
    if similarity < cover_threshold:
        return False
    return querytext.content_stems(query) <= querytext.content_stems(text)


def covered_by(
    previous_sources: Sequence[Source],
    query: str,
    embedder: Embedder | None = None,
    *,
    cover_threshold: float = COVER_THRESHOLD,
    relevance_floor: float = RELEVANCE_FLOOR,
) -> Coverage:
    """Whether the sources of earlier turns answer ``query`` (one of them passes :func:`answers_query`),
    and which of them are still relevant to it (cosine >= ``relevance_floor``), most similar first."""
    if not previous_sources:
        return Coverage(False, 0.0)
    sims = source_similarity(previous_sources, query, embedder)
    order = [int(i) for i in np.argsort(-sims, kind="stable")]
    kept = [previous_sources[i] for i in order if sims[i] >= relevance_floor]
    scores = [round(float(sims[i]), 4) for i in order if sims[i] >= relevance_floor]
    covered = any(
        answers_query(float(sims[i]), query, _passage(previous_sources[i]), cover_threshold=cover_threshold)
        for i in order
    )
    return Coverage(covered, round(float(sims.max()), 4), kept, scores)


def filter_relevant(
    previous_sources: Sequence[Source],
    query: str,
    embedder: Embedder | None = None,
    *,
    relevance_floor: float = RELEVANCE_FLOOR,
) -> list[Source]:
    """The earlier sources still relevant to ``query`` (turn-level relevance filtering)."""
    return covered_by(previous_sources, query, embedder, relevance_floor=relevance_floor).kept
