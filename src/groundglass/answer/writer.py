"""Writing the answer: the model's text, checked a sentence at a time against the sources it cites.

:func:`write_checked` streams what passes :class:`~groundglass.answer.checked.SentenceGate`; a draft
whose first claim fails is sent back once with the problem pointed out, and a second failure is a
decline (:data:`~groundglass.answer.prompt.DECLINE`). A question about a name that no source
mentions is declined before any draft (:mod:`~groundglass.answer.unmentioned`). :func:`generate_json` is
the structured-output path. Both stop at the request's ``cancel`` event, in the prompt's prefill too.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from contextlib import closing
from functools import partial
from typing import Any

from groundglass.answer import checked, cite, concise, coverage, extractive, prompt, retry_hints, unmentioned
from groundglass.answer.events import Event, Token
from groundglass.answer.job import Job
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.planner.fallback import part_queries
from groundglass.answer.repetition import RepetitionGuard
from groundglass.answer.types import Source
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

log = get_logger(__name__)

MIN_ANSWER_TOKENS = 32
# Sentences said again before the model is stopped: the first repeat is left out, the second means
# it is going round (the tiny model wrote the same paragraph three times).
MAX_REPEATS = 2


def write_checked(
    job: Job, messages: list[ChatMessage], completion: Completion, sources: list[Source]
) -> Generator[Event, None, tuple[str, dict[str, Any]]]:
    """The answer, streamed a sentence at a time as each passes its check (:mod:`checked`): what
    the model adds must be in the sources it cites. A draft whose first claim fails is never shown:
    the model is asked once more with the problem and the closest source sentences pointed out, and
    when that fails too the engine declines. A question of several parts has each part answered on
    its own instead of the second draft (:func:`answer_parts`). Returns the text and a report for
    ``Answer.grounding``."""
    report: dict[str, Any] = {"drafts": 0, "rejected": [], "dropped": []}
    shown: list[str] = []
    parts = part_queries(job.question, as_asked=True)
    missing = unmentioned.unmentioned_name(job.question, sources) if len(parts) <= 1 else None
    if missing is not None:  # nothing the model could write would be grounded: decline at once
        log.info("declined_unmentioned", name=missing)
        report["unmentioned"] = missing
        return (yield from _without_draft(job, completion, report, prompt.declined_for(missing)))
    attempt_messages = messages
    for _ in range(2):
        gate = checked.SentenceGate(job.question, sources, hold_decline=True)
        draft = Completion()
        for text in generate(job, attempt_messages, draft, len(sources), gate):
            shown.append(text)
            yield Token(text)
        _count_draft(report, completion, draft, gate)
        completion.finish_reason = draft.finish_reason
        if gate.failed is None or not sources:
            text = "".join(shown).strip()
            left_out = coverage.unanswered_parts(parts, text) if sources else []
            if left_out and not cite.is_declined_answer(text):
                more = yield from answer_left_out(
                    job, attempt_messages, gate.draft, left_out, sources, completion, report
                )
                text = f"{text} {more}".strip()
            return text, report
        failed = gate.failed
        if failed.reason == "declined":
            log.info("draft_declined", sentence=failed.sentence[:200])
            break  # the model's own decline: what a source settles is read off, or the engine declines
        report["rejected"].append(failed.as_dict())
        log.info("draft_rejected", reason=failed.reason, values=failed.values, sentence=failed.sentence[:200])
        if len(parts) > 1:
            text = yield from answer_parts(job, parts, completion, sources, report)
            if text:
                return text, report
            break
        hints = _hints(job.question, failed, sources)
        attempt_messages = prompt.retry_messages(messages, gate.draft, failed.reason, failed.values, hints)
    said = _read_off(job.question, sources, report) if sources else None
    if said is not None:
        return (yield from _without_draft(job, completion, report, said, declined=False))
    return (yield from _without_draft(job, completion, report, prompt.DECLINE))


def _without_draft(
    job: Job, completion: Completion, report: dict[str, Any], text: str, *, declined: bool = True
) -> Generator[Event, None, tuple[str, dict[str, Any]]]:
    """``text`` shown as the whole answer without a draft that passed: the decline, or (``declined``
    False) the answer read off a source. It is the first thing shown."""
    completion.finish_reason = "stop"
    _first_shown(job)
    if declined:
        report["declined"] = True
    yield Token(text)
    return text, report


def _count_draft(
    report: dict[str, Any], completion: Completion, draft: Completion, gate: checked.SentenceGate
) -> None:
    """One more draft in the grounding report, and its tokens in the answer's usage."""
    report["drafts"] += 1
    report["dropped"] += [r.as_dict() for r in gate.dropped]
    completion.prompt_tokens += draft.prompt_tokens
    completion.completion_tokens += draft.completion_tokens
    completion.cached_tokens += draft.cached_tokens


def answer_parts(
    job: Job, parts: list[str], completion: Completion, sources: list[Source], report: dict[str, Any]
) -> Generator[Event, None, str]:
    """Each part of the question answered in a sentence of its own, checked against that part, and
    shown when it passes; a part without a checked answer says so. "" (nothing shown) when no part
    has one.

    Told what was wrong, the 1.5B model wrote the same draft again (pprint's width of 80 for
    textwrap.fill() too), and the part that the sources answer was declined with the other; asked
    alone, each part is a short question over the same sources, and it answered both (80 and 70)."""
    asks = [
        (
            p,
            prompt.build_messages(
                p, sources, history=job.history, style="partial", instructions=job.instructions
            ),
        )
        for p in parts
    ]
    answered, missing = yield from _answer_each(job, asks, sources, completion, report, after=False)
    if not answered:
        return ""
    report["parts"] = {"asked": parts, "unanswered": missing}
    return (yield from _with_notes(answered, missing, completion))


def answer_left_out(
    job: Job,
    messages: list[ChatMessage],
    draft: str,
    left_out: list[str],
    sources: list[Source],
    completion: Completion,
    report: dict[str, Any],
) -> Generator[Event, None, str]:
    """The parts of the question that a shown answer left out (:mod:`coverage`), each asked for as a
    follow-up turn of the same conversation, checked against that part, and shown after the answer
    when it passes; a part without a checked answer says so. The follow-up shares the first prompt's
    cached prefix, so it costs its own few tokens and the sentence, not the sources again."""
    asks = [(p, prompt.left_out_messages(messages, draft, p)) for p in left_out]
    added, unanswered = yield from _answer_each(job, asks, sources, completion, report, after=True)
    report["parts"] = {"left_out": left_out, "unanswered": unanswered}
    return (yield from _with_notes(added, unanswered, completion))


def _answer_each(
    job: Job,
    asks: list[tuple[str, list[ChatMessage]]],
    sources: list[Source],
    completion: Completion,
    report: dict[str, Any],
    *,
    after: bool,
) -> Generator[Event, None, tuple[list[str], list[str]]]:
    """Each (part, prompt) asked in turn, each answer shown once it passes (``after``: after text
    already shown); returns the answers shown and the parts left without one."""
    answered: list[str] = []
    missing: list[str] = []
    for part, messages in asks:
        said = _answer_part(job, messages, part, sources, completion, report)
        if said is None:
            missing.append(part)
            continue
        yield Token(f" {said}" if after or answered else said)
        answered.append(said)
    return answered, missing


def _with_notes(
    answered: list[str], missing: list[str], completion: Completion
) -> Generator[Event, None, str]:
    """A note shown for each part without an answer; the answer's text, notes included."""
    notes = [_not_said(p) for p in missing]
    for note in notes:
        yield Token(f" {note}")
    completion.finish_reason = "stop"
    return " ".join([*answered, *notes])


def _answer_part(
    job: Job,
    messages: list[ChatMessage],
    part: str,
    sources: list[Source],
    completion: Completion,
    report: dict[str, Any],
) -> str | None:
    """The model's answer to one part of the question, checked against that part; None when it
    declines, or fails its check twice: a failed answer is sent back once, with the problem and the
    source sentences closest to the part pointed out, as a whole draft is. Asked "Which pickle
    protocol is the default since Python 3.8?" as a part, the 1.5B model wrote only "[2]". A part
    about a name no source mentions is not asked (:mod:`unmentioned`)."""
    missing = unmentioned.unmentioned_name(part, sources)
    if missing is not None:
        log.info("part_unmentioned", part=part, name=missing)
        report.setdefault("unmentioned", missing)
        return None
    for _ in range(2):
        gate = checked.SentenceGate(part, sources)
        attempt = Completion()
        said = "".join(generate(job, messages, attempt, len(sources), gate)).strip()
        _count_draft(report, completion, attempt, gate)
        failed = gate.failed
        if failed is None and not cite.is_declined_answer(said) and coverage.lacks_figure(part, said):
            failed = checked.Rejection("no_figure", " ".join(said.split()))
        if failed is None:
            if said and not cite.is_declined_answer(said):
                return said
            break
        report["rejected"].append(failed.as_dict())
        hints = _hints(part, failed, sources)
        messages = prompt.retry_messages(messages, gate.draft, failed.reason, failed.values, hints)
    return _read_off(part, sources, report)


def _read_off(question: str, sources: list[Source], report: dict[str, Any]) -> str | None:
    """The answer a source's signature gives, its sentence that states the default asked, the table
    row the question names, or the option entry the question describes (:mod:`extractive`), when the
    model wrote none that passed."""
    said = (
        extractive.signature_default(question, sources)
        or extractive.stated_default(question, sources)
        or extractive.table_row(question, sources)
        or extractive.paired_figure(question, sources)
        or extractive.described_entry(question, sources)
    )
    if said is not None:
        report.setdefault("read_off", []).append(said)
    return said


def _not_said(part: str) -> str:
    return f'The sources do not say: "{part.strip(" ?")}?"'


def _hints(question: str, failed: checked.Rejection, sources: list[Source]) -> list[tuple[int, str]]:
    """What a retry points the model at (at most three): the lines its check found, the table rows
    the question names, and the source sentences closest to the question."""
    from groundglass.answer.embeddings import get_embedder

    rows = retry_hints.rows_naming(question, sources)
    closest = retry_hints.closest_sentences(question, sources, get_embedder())
    return list(dict.fromkeys([*failed.hints, *rows, *closest]))[:3]


def _first_shown(job: Job) -> None:
    """Time the first text shown (once per answer, however many drafts and parts it takes)."""
    if "first_token_s" not in job.timings:
        job.lap("first_token_s")


def check_cancelled(job: Job) -> None:
    if job.request.cancel is not None and job.request.cancel.is_set():
        raise GroundglassError("the answer was cancelled", status=499, code="cancelled")


def generate(
    job: Job, messages: list[ChatMessage], completion: Completion, n_sources: int, gate: checked.SentenceGate
) -> Iterator[str]:
    """The model's text as it comes, with markers that match no source taken out, held by ``gate``
    until each sentence has passed its check; stopped when the model loops or the gate fails."""
    markers = cite.MarkerFilter(n_sources)
    repetition = RepetitionGuard()
    max_tokens = room_to_answer(job, messages)
    shown = ""  # what the gate let through
    # a brief answer to a question after one value ends once a checked sentence has given it
    one_value = (
        job.effort.answer_style == "brief"
        and concise.asks_one_value(gate.question)
        and len(part_queries(gate.question, as_asked=True)) <= 1
    )
    with closing(
        job.llm.stream(
            messages,
            max_tokens=max_tokens,
            temperature=job.temperature,
            top_p=job.request.top_p,
            stop=job.request.stop,
            completion=completion,
            cancel=job.request.cancel,
        )
    ) as tokens:
        for raw in tokens:
            check_cancelled(job)
            text = markers.feed(raw)
            if repetition.feed(text):
                log.info("generation_looped", tail=gate.draft[-80:])
                for piece in gate.stop("repetition"):
                    _first_shown(job)
                    yield piece
                break
            for piece in gate.feed(text):
                _first_shown(job)
                shown += piece
                yield piece
            if gate.failed is not None:
                break
            if one_value and gate.end_where(partial(_given, shown, gate.question)):
                log.info("answer_given", sentence=(shown or gate.draft)[-120:])
                completion.finish_reason = "stop"
                for piece in gate.finish():
                    _first_shown(job)
                    yield piece
                break
            if gate.repeats >= MAX_REPEATS:
                log.info("generation_repeated", tail=gate.draft[-80:])
                for piece in gate.stop("repetition"):
                    yield piece
                break
        else:
            check_cancelled(job)  # the model stopped because it was told to
            for piece in [*gate.feed(markers.flush()), *gate.finish()]:
                _first_shown(job)
                yield piece
    job.lap("generate_s")


def _given(shown: str, question: str, held: str) -> bool:
    """Whether the answer shown so far, followed by ``held`` (checked next), gives the value asked."""
    return concise.gives_value(shown + held, question)


def generate_json(
    job: Job, messages: list[ChatMessage], schema: dict[str, Any], completion: Completion
) -> str:
    """The answer as JSON that ``schema`` accepts (a StructuredOutputError when the model fails)."""
    value = job.llm.complete_json(
        messages,
        schema,
        max_tokens=room_to_answer(job, messages),
        temperature=job.temperature,
        completion=completion,
    )
    job.lap("first_token_s")
    job.lap("generate_s")
    return json.dumps(value, ensure_ascii=False)


def room_to_answer(job: Job, messages: list[ChatMessage]) -> int:
    """``max_tokens``, cut so that prompt + answer fit the model's context window."""
    used = sum(job.llm.count_tokens(m.content) for m in messages) + 24
    room = job.llm.context_length - used
    if room < MIN_ANSWER_TOKENS:
        raise GroundglassError(
            f"the prompt ({used} tokens) leaves no room to answer in the model's "
            f"{job.llm.context_length}-token context",
            "lower retrieval.context_tokens or raise llm.context_length",
        )
    return min(job.max_tokens, room)
