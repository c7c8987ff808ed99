"""Evaluation of conversations and reasoning effort: what each effort level buys and costs.

    .venv/bin/python -m bench.eval_reasoning [--questions N] [--levels minimal,low,medium,high]
        [--conversations N] [--model default] [--threads 2] [--out runs/eval_reasoning.json]

(``make eval`` runs it with the defaults.) The local index ``default`` (the 10k Wikipedia summaries,
``builtin:wikipedia``) is built first when missing or incomplete (resumable: ~15 minutes on 2 cores),
and the embedded model assembled when needed. ``GROUNDGLASS_HOME`` chooses where both live.

1. **FanOutQA dev** multi-hop questions whose needed pages (every evidence page of the gold
   decomposition) are all in the corpus: 8 of the 310 (``--coverage 0.8`` admits questions with 80 %
   of their pages there). Each is answered at each effort level; the questions run in turn, all
   levels for one question before the next, so a cut-short run still compares the levels on the
   same questions. Per level:

   - **accuracy**: FanOutQA's string metric with a documented normalisation
     (:mod:`bench.answer_match`): ``loose`` = the share of the gold answer's strings (list items,
     dict keys and values) found in the answer, ``strict`` = the share of questions with all of
     them found. The ``<think>`` block is stripped first.
   - **pages**: the share of the needed pages among the sources given to the model (what the
     searches found).
   - **citations**: over all answer sentences that cite something: ``on-page`` = the share whose
     cited sources are all pages the gold decomposition needs; ``supported`` = the share the
     engine's attribution marks as supported by what they cite. ``cited`` = the share of answer
     sentences that cite anything.
   - **latency**: seconds per question (p50 and mean, the model already loaded), time to the first
     token of the answer proper (after the trace, p50), searches and tokens written.

   ``minimal`` is the **single-search baseline**: one search for the question as asked, no planning
   call (today's pipeline); the ratio columns divide by it.
2. **Multi-turn check**: scripted conversations (:mod:`bench.conversations`, 20 conversations, 33
   follow-ups) run through the engine the way ``groundglass chat`` does (each turn sends the
   history and the sources gathered so far as ``prior_sources``). Reported: the share of follow-ups
   whose standalone query (``reasoning["rewrite"]["query"]``) names the right entity, and reuse of
   earlier sources against the script's expectation (correct reuse, wrong reuse, missed reuse,
   correct new search), with a check of the labels: whether the earlier sources did hold the
   expected answer.

Everything measured is also written to ``--out`` (JSON: every answer, its sources and timings).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from groundglass.answer.effort import EFFORTS
from groundglass.answer.engine import Engine
from groundglass.answer.events import Done, ErrorEvent, Token
from groundglass.answer.types import Answer, AskRequest, ChatMessage, Source
from groundglass.config import Settings, load_settings
from groundglass.errors import GroundglassError

from .answer_match import found, score
from .conversations import CONVERSATIONS, Turn
from .fanoutqa_data import dev_questions, needed_pages

THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)
TRACE_CLOSE = "</think>\n\n"
MAX_PRIOR_SOURCES = 24  # as groundglass chat (commands/chat.py) offers them


# --- setup ------------------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> tuple[Settings, Engine]:
    """Settings, the model assembled, the index built (resumably), everything loaded once."""
    from groundglass.answer.embeddings import get_embedder
    from groundglass.answer.llm.load import EMBEDDED
    from groundglass.commands.answer import DEMO_INDEX, ensure_demo_index

    settings = load_settings(llm__model=args.model, llm__threads=args.threads, retrieval__index=DEMO_INDEX)
    print(f"home: {settings.home}", flush=True)
    if args.model in EMBEDDED:
        from groundglass.assets import ensure_model

        print(f"model {args.model!r}: {ensure_model(args.model, settings)}", flush=True)
    print(f"index {DEMO_INDEX!r}:", flush=True)
    ensure_demo_index(settings)
    engine = Engine(settings)
    started = time.perf_counter()
    engine.llm()
    index = engine.index()
    index.vectors()
    get_embedder().encode(["warm up"])
    print(f"model, index and embedder loaded in {time.perf_counter() - started:.1f} s", flush=True)
    return settings, engine


def corpus_titles() -> set[str]:
    from groundglass.answer.index.builtin import wikipedia_documents

    return {d.title for d in wikipedia_documents()}


def pick_questions(titles: set[str], coverage: float, n: int) -> list[dict[str, Any]]:
    """Dev questions with at least ``coverage`` of their needed pages in the corpus: best covered first,
    then those that need the fewest pages (the cheapest to answer, when the time budget runs out)."""
    scored = []
    for q in dev_questions():
        pages = needed_pages(q)
        if not pages:
            continue
        share = sum(t in titles for t in pages) / len(pages)
        if share >= coverage - 1e-9:
            scored.append((-share, len(pages), len(scored), q))
    return [q for *_, q in sorted(scored, key=lambda x: x[:3])][:n]


# --- one answer, timed ----------------------------------------------------------------------------------


def timed_answer(engine: Engine, request: AskRequest) -> tuple[Answer | None, dict[str, Any]]:
    """The answer, with wall-clock seconds to the first token of the answer proper and to the end."""
    started = time.perf_counter()
    first: float | None = None
    in_trace = False
    n_tokens = 0
    try:
        for event in engine.stream(request):
            if isinstance(event, Token):
                now = time.perf_counter() - started
                if n_tokens == 0 and event.text.startswith("<think>"):
                    in_trace = True
                elif in_trace and event.text == TRACE_CLOSE:
                    in_trace = False
                elif not in_trace and first is None:
                    first = now
                n_tokens += 1
            elif isinstance(event, ErrorEvent):
                return None, {"error": event.message, "seconds": time.perf_counter() - started}
            elif isinstance(event, Done):
                seconds = time.perf_counter() - started
                return event.answer, {
                    "seconds": seconds,
                    "first_token_s": first if first is not None else seconds,
                }
    except GroundglassError as exc:
        return None, {"error": str(exc), "seconds": time.perf_counter() - started}
    return None, {"error": "the stream ended without an answer", "seconds": time.perf_counter() - started}


def answer_text(answer: Answer) -> str:
    return THINK.sub("", answer.content).strip()


# --- part 1: FanOutQA -----------------------------------------------------------------------------------


def judge(q: dict[str, Any], level: str, answer: Answer | None, timing: dict[str, Any]) -> dict[str, Any]:
    needed = needed_pages(q)
    rec: dict[str, Any] = {
        "id": q["id"],
        "question": q["question"],
        "level": level,
        "gold": q["answer"],
        "needed_pages": needed,
        **timing,
    }
    if answer is None:
        rec.update(loose=0.0, strict=False, page_recall=0.0, sentences=[], searches=0)
        return rec
    text = answer_text(answer)
    match = score(q["answer"], text)
    titles = [s.title for s in answer.sources]
    sentences = []
    for a in answer.attribution:
        cited = [answer.sources[n - 1].title for n in a.citations if 0 < n <= len(answer.sources)]
        sentences.append(
            {
                "text": a.text,
                "cited": cited,
                "supported": a.supported,
                "on_page": bool(cited) and all(t in needed for t in cited),
            }
        )
    reasoning = answer.reasoning or {}
    rec.update(
        answer=text,
        trace=answer.content[: len(answer.content) - len(text)].strip(),
        loose=match.loose,
        strict=match.strict,
        missing=match.missing,
        sources=titles,
        page_recall=sum(t in titles for t in needed) / len(needed),
        sentences=sentences,
        searches=answer.usage.num_search_queries,
        reasoning_tokens=answer.usage.reasoning_tokens,
        completion_tokens=answer.usage.completion_tokens,
        prompt_tokens=answer.usage.prompt_tokens,
        declined=answer.declined,
        queries=answer.queries,
        plan=reasoning.get("plan"),
        steps=[
            {k: s[k] for k in ("id", "query", "round", "partial_answer", "seconds")}
            for s in reasoning.get("steps") or []
        ],
        engine_timings=answer.timings,
    )
    return rec


def over_budget(deadline: float | None, durations: list[float]) -> bool:
    """Whether one more item (as long as the longest so far) would end after ``deadline``."""
    if deadline is None or not durations:
        return False
    return time.perf_counter() + max(durations) > deadline


def run_fanoutqa(
    engine: Engine,
    questions: list[dict[str, Any]],
    levels: list[str],
    model: str,
    deadline: float | None,
    records: list[dict[str, Any]],
    save: Callable[[], None],
) -> None:
    """Every level on each question in turn (appended to ``records``), until the questions or the time
    run out."""
    durations: list[float] = []
    for i, q in enumerate(questions, start=1):
        if over_budget(deadline, durations):
            print(f"\ntime budget spent: {i - 1} of {len(questions)} question(s) done", flush=True)
            break
        started = time.perf_counter()
        print(f"\n[{i}/{len(questions)}] {q['question']}", flush=True)
        for level in levels:
            request = AskRequest.from_question(q["question"], model=model, reasoning_effort=level)
            answer, timing = timed_answer(engine, request)
            rec = judge(q, level, answer, timing)
            records.append(rec)
            what = rec.get("error") or (
                f"loose {rec['loose']:.2f}  pages {rec['page_recall']:.2f}  "
                f"searches {rec['searches']}  1st token {rec['first_token_s']:.1f} s"
            )
            print(f"  {level:<8} {rec['seconds']:6.1f} s  {what}", flush=True)
            save()
        durations.append(time.perf_counter() - started)


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def level_rows(records: list[dict[str, Any]], levels: list[str]) -> list[dict[str, Any]]:
    rows = []
    for level in levels:
        rs = [r for r in records if r["level"] == level]
        if not rs:
            continue
        sentences = [s for r in rs for s in r.get("sentences", [])]
        cited = [s for s in sentences if s["cited"]]
        ok = [r for r in rs if "error" not in r]
        rows.append(
            {
                "level": level,
                "n": len(rs),
                "errors": len(rs) - len(ok),
                "strict": statistics.fmean(float(r["strict"]) for r in rs),
                "loose": statistics.fmean(r["loose"] for r in rs),
                "pages": statistics.fmean(r["page_recall"] for r in rs),
                "cited": len(cited) / len(sentences) if sentences else float("nan"),
                "on_page": sum(s["on_page"] for s in cited) / len(cited) if cited else float("nan"),
                "supported": sum(s["supported"] for s in cited) / len(cited) if cited else float("nan"),
                "searches": statistics.fmean(r["searches"] for r in rs),
                "p50": p50([r["seconds"] for r in rs]),
                "mean": statistics.fmean(r["seconds"] for r in rs),
                "ttft": p50([r["first_token_s"] for r in ok]) if ok else float("nan"),
                "tokens": statistics.fmean(r.get("completion_tokens", 0) for r in rs),
                "reasoning_tokens": statistics.fmean(r.get("reasoning_tokens", 0) for r in rs),
            }
        )
    return rows


def print_level_table(rows: list[dict[str, Any]], n_questions: int, model_name: str, threads: int) -> None:
    print(
        f"\nFanOutQA dev: {n_questions} multi-hop question(s) whose pages are in the corpus, "
        f"model {model_name}, {threads} thread(s)"
    )
    head = (
        f"{'level':<18}{'strict':>7}{'loose':>7}{'pages':>7}{'cited':>7}{'on-page':>8}{'supp.':>7}"
        f"{'search':>7}{'p50 s':>7}{'mean s':>8}{'1st tok':>8}{'tokens':>7}{'reason':>7}"
        f"{'loose/base':>11}{'p50/base':>10}"
    )
    print(head)
    print("-" * len(head))
    base = next((r for r in rows if r["level"] == "minimal"), None)
    for r in rows:
        name = "minimal (1 search)" if r["level"] == "minimal" else r["level"]
        ratio_acc = f"{r['loose'] / base['loose']:.2f}" if base and base["loose"] else "-"
        ratio_time = f"{r['p50'] / base['p50']:.2f}" if base and base["p50"] else "-"
        print(
            f"{name:<18}{r['strict']:>7.2f}{r['loose']:>7.2f}{r['pages']:>7.2f}{r['cited']:>7.2f}"
            f"{r['on_page']:>8.2f}{r['supported']:>7.2f}{r['searches']:>7.1f}{r['p50']:>7.1f}"
            f"{r['mean']:>8.1f}{r['ttft']:>8.1f}{r['tokens']:>7.0f}{r['reasoning_tokens']:>7.0f}"
            f"{ratio_acc:>11}{ratio_time:>10}"
        )
    errors = sum(r["errors"] for r in rows)
    print(
        "baseline: minimal effort = one search for the question as asked, no planning call; ratios are "
        "level / minimal (loose accuracy, p50 seconds)."
    )
    print(
        "strict/loose: FanOutQA answer match (bench/answer_match.py); pages: needed pages among the "
        "sources; cited: answer sentences citing a source; on-page: cited sentences whose sources are all "
        "needed pages; supp.: cited sentences the attribution supports; 1st tok: seconds to the first "
        "answer token after the trace (p50); tokens/reason: answer / reasoning tokens written (mean)."
        + (f" {errors} run(s) failed (counted as wrong)." if errors else "")
    )


# --- part 2: conversations -------------------------------------------------------------------------------


def _same(a: Source, b: Source) -> bool:
    return (a.url, a.text) == (b.url, b.text)


def run_conversations(
    engine: Engine,
    conversations: list[list[Turn]],
    effort: str,
    model: str,
    max_tokens: int,
    deadline: float | None,
    records: list[dict[str, Any]],
    save: Callable[[], None],
) -> None:
    """Each conversation turn by turn, as groundglass chat runs it (appended to ``records``), until
    they or the time run out."""
    durations: list[float] = []
    for c, turns in enumerate(conversations, start=1):
        if over_budget(deadline, durations):
            print(f"\ntime budget spent: {c - 1} of {len(conversations)} conversation(s) done", flush=True)
            break
        started = time.perf_counter()
        messages: list[ChatMessage] = []
        gathered: list[Source] = []
        print(f"\n[conversation {c}/{len(conversations)}]", flush=True)
        for t, turn in enumerate(turns):
            prior = gathered[:MAX_PRIOR_SOURCES]
            request = AskRequest(
                messages=[*messages, ChatMessage("user", turn.user)],
                model=model,
                reasoning_effort=effort,
                max_tokens=max_tokens,
                prior_sources=prior,
            )
            answer, timing = timed_answer(engine, request)
            rec: dict[str, Any] = {
                "conversation": c,
                "turn": t,
                "user": turn.user,
                "entity": list(turn.entity),
                "expected_reuse": turn.reuse,
                "expected_answer": turn.answer,
                **timing,
            }
            if answer is None:
                records.append(rec)
                print(f"  > {turn.user}\n    error: {rec['error']}", flush=True)
                break  # the rest of the conversation would lack this turn
            reasoning = answer.reasoning or {}
            rewrite = reasoning.get("rewrite") or {}
            query = rewrite.get("query") or reasoning.get("query") or turn.user
            text = answer_text(answer)
            rec.update(
                query=query,
                method=rewrite.get("method", "single"),
                rewrite_reason=rewrite.get("reason", ""),
                reused=bool(reasoning.get("reused_sources")),
                searches=answer.usage.num_search_queries,
                answer=text,
                sources=[s.title for s in answer.sources],
                prior_sources=[s.title for s in prior],
            )
            if t > 0:
                rec["names_entity"] = any(e.lower() in query.lower() for e in turn.entity)
                rec["earlier_held_answer"] = any(found(turn.answer, f"{s.title}\n{s.text}") for s in prior)
                rec["answer_has_expected"] = found(turn.answer, text)
            records.append(rec)
            mark = ""
            if t > 0:
                mark = (
                    f"  [{'ok' if rec['names_entity'] else 'WRONG ENTITY'}; "
                    f"{'reused' if rec['reused'] else 'searched'}, expected "
                    f"{ {True: 'reuse', False: 'search', None: 'either'}[turn.reuse] }]"
                )
            print(
                f"  > {turn.user}\n    query: {query!r} ({rec['method']}){mark}  {rec['seconds']:.1f} s",
                flush=True,
            )
            save()
            messages += [ChatMessage("user", turn.user), ChatMessage("assistant", answer.content)]
            new = [s for s in answer.sources if not any(_same(s, g) for g in gathered)]
            gathered = [*new, *gathered]
        durations.append(time.perf_counter() - started)


def print_conversation_summary(records: list[dict[str, Any]], effort: str) -> None:
    follow = [r for r in records if r["turn"] > 0]
    ok = [r for r in follow if "error" not in r]
    n_conv = len({r["conversation"] for r in records})
    print(
        f"\nMulti-turn check: {n_conv} scripted conversation(s), {len(follow)} follow-up(s), effort "
        f"{effort}, prior_sources = the sources of earlier turns (as groundglass chat)"
    )
    if not follow:
        return
    named = sum(r["names_entity"] for r in ok)
    methods: dict[str, int] = {}
    for r in ok:
        methods[r["method"]] = methods.get(r["method"], 0) + 1
    how = ", ".join(f"{k} {v}" for k, v in sorted(methods.items()))
    print(
        f"  rewritten query names the right entity: {named}/{len(follow)} = {named / len(follow):.0%} "
        f"(rewrite method: {how})"
    )
    for r in ok:
        if not r["names_entity"]:
            print(f"    missed: {r['user']!r} -> {r['query']!r} (wanted {' or '.join(r['entity'])})")
    scored = [r for r in ok if r["expected_reuse"] is not None]
    tp = sum(r["reused"] and r["expected_reuse"] for r in scored)
    fp = sum(r["reused"] and not r["expected_reuse"] for r in scored)
    fn = sum(not r["reused"] and r["expected_reuse"] for r in scored)
    tn = sum(not r["reused"] and not r["expected_reuse"] for r in scored)
    exp_yes, exp_no = tp + fn, fp + tn
    print(f"  reuse of earlier sources ({len(scored)} follow-ups with an expectation):")
    print(f"    reuse expected {exp_yes:>3}: reused (correct) {tp:>3}, searched again (missed reuse) {fn:>3}")
    print(f"    search expected {exp_no:>2}: searched (correct) {tn:>3}, reused (wrong reuse)       {fp:>3}")
    if scored:
        print(
            f"    correct decisions {tp + tn}/{len(scored)} = {(tp + tn) / len(scored):.0%}; "
            f"reuse precision {tp / (tp + fp) if tp + fp else float('nan'):.2f}, recall "
            f"{tp / exp_yes if exp_yes else float('nan'):.2f}"
        )
    free = [r for r in ok if r["expected_reuse"] is None]
    if free:
        print(f"    not scored (either is right) {len(free)}: reused {sum(r['reused'] for r in free)}")
    reused = [r for r in ok if r["reused"]]
    print(
        f"  turns that reused instead of searching: {len(reused)}/{len(follow)}; all turns' searches: "
        f"{sum(r['searches'] for r in ok if 'searches' in r)}"
    )
    held = [r for r in scored if r["earlier_held_answer"] == r["expected_reuse"]]
    print(
        f"  label check: the earlier sources held the expected answer exactly where the script expected "
        f"reuse in {len(held)}/{len(scored)} follow-ups"
    )
    for r in scored:
        if r["earlier_held_answer"] != r["expected_reuse"]:
            print(
                f"    {r['user']!r}: expected {'reuse' if r['expected_reuse'] else 'search'}, earlier "
                f"sources {'held' if r['earlier_held_answer'] else 'lacked'} {r['expected_answer']!r}"
            )
    has = sum(r["answer_has_expected"] for r in ok)
    secs_reuse = [r["seconds"] for r in ok if r["reused"]]
    secs_search = [r["seconds"] for r in ok if not r["reused"]]
    print(f"  follow-up answers containing the expected answer: {has}/{len(follow)}")
    print(
        f"  seconds per follow-up: reused p50 {p50(secs_reuse):.1f} ({len(secs_reuse)}), "
        f"searched p50 {p50(secs_search):.1f} ({len(secs_search)})"
    )
    fails = len(follow) - len(ok)
    if fails:
        print(f"  {fails} follow-up(s) failed with an error (counted as wrong)")


# --- main -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--questions",
        type=int,
        default=8,
        help="FanOutQA questions at most (default 8: all whose pages are in the corpus)",
    )
    ap.add_argument(
        "--skip",
        type=int,
        default=0,
        help="skip the first N questions (to continue an earlier run; merge with --report)",
    )
    ap.add_argument(
        "--coverage",
        type=float,
        default=1.0,
        help="share of a question's needed pages that must be in the corpus (default 1.0)",
    )
    ap.add_argument("--levels", default=",".join(EFFORTS), help="effort levels, comma-separated")
    ap.add_argument(
        "--conversations",
        type=int,
        default=len(CONVERSATIONS),
        help=f"scripted conversations at most (default {len(CONVERSATIONS)}; 0 skips the check)",
    )
    ap.add_argument("--chat-effort", default="minimal", help="effort of the conversation turns")
    ap.add_argument(
        "--turn-max-tokens",
        type=int,
        default=48,
        help="answer cap of a conversation turn (default 48: the rewrite and reuse decisions "
        "come before the answer, and the rewriter reads an answer's first sentence)",
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=40.0,
        help="time budget (default 40; 0: none): no new question or conversation starts that "
        "would end after it; the conversations get --chat-share of it",
    )
    ap.add_argument(
        "--chat-share",
        type=float,
        default=0.3,
        help="share of --minutes for the multi-turn check (default 0.3)",
    )
    ap.add_argument("--model", default="default", help="model spec (default: the embedded Qwen2.5 1.5B)")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("runs/eval_reasoning.json"),
        help="JSON file for every answer and figure, rewritten as they come",
    )
    ap.add_argument(
        "--report",
        type=Path,
        nargs="+",
        default=None,
        help="only print the tables of saved --out files, merged (conversations labelled as scripted now)",
    )
    args = ap.parse_args(argv)
    args.levels = [lv.strip().lower() for lv in args.levels.split(",") if lv.strip()]
    unknown = [lv for lv in args.levels if lv not in EFFORTS]
    if unknown or not args.levels:
        ap.error(f"unknown level(s) {', '.join(unknown) or '(none)'}; use {', '.join(EFFORTS)}")
    if args.chat_effort not in EFFORTS:
        ap.error(f"unknown --chat-effort {args.chat_effort!r}; use {', '.join(EFFORTS)}")
    if min(args.questions, args.skip, args.conversations) < 0 or min(args.threads, args.turn_max_tokens) < 1:
        ap.error("--questions, --skip and --conversations must be >= 0, --threads and --turn-max-tokens >= 1")
    if not 0.0 < args.coverage <= 1.0 or not 0.0 <= args.chat_share <= 1.0 or args.minutes < 0:
        ap.error("--coverage must be in (0, 1], --chat-share in [0, 1], --minutes >= 0")
    return args


def report(paths: list[Path], levels: list[str]) -> int:
    """Print the tables of saved runs, merged (a question or conversation turn measured twice counts
    once: the later file wins). The answers are scored again with the answer match as it is now, and
    the conversations' expected reuse is taken from the script as it is now (matched by conversation
    number and turn), so neither change needs a rerun."""
    fans: dict[tuple[str, str], dict[str, Any]] = {}
    chats: dict[tuple[int, int], dict[str, Any]] = {}
    summary: dict[str, Any] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        summary = summary or data["summary"]
        fans.update({(r["id"], r["level"]): r for r in data["fanoutqa"]})
        chats.update({(r["conversation"], r["turn"]): r for r in data["conversations"]})
    fan, chat = list(fans.values()), list(chats.values())
    for r in fan:  # scored again, so that a change to the answer match applies to saved answers
        if "answer" in r:
            match = score(r["gold"], r["answer"])
            r.update(loose=match.loose, strict=match.strict, missing=match.missing)
    for r in chat:
        turns = CONVERSATIONS[r["conversation"] - 1] if r["conversation"] <= len(CONVERSATIONS) else []
        if r["turn"] < len(turns) and turns[r["turn"]].user == r["user"]:
            r["expected_reuse"] = turns[r["turn"]].reuse
    rows = level_rows(fan, [lv for lv in EFFORTS if lv in levels])
    if rows:
        print_level_table(rows, len({r["id"] for r in fan}), summary["model"], summary["threads"])
    if chat:
        print_conversation_summary(chat, summary.get("chat_effort", "minimal"))
    return 0


def main(argv: list[str] | None = None) -> int:
    from groundglass.log import configure_logging

    args = parse_args(argv)
    if args.report is not None:
        return report(args.report, args.levels)
    configure_logging()
    started = time.perf_counter()
    budget = args.minutes * 60.0
    try:
        settings, engine = prepare(args)
    except GroundglassError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model_name = engine.llm().name
    questions = pick_questions(corpus_titles(), args.coverage, args.skip + args.questions)[args.skip :]
    convs = CONVERSATIONS[: args.conversations]
    print(
        f"{len(questions)} FanOutQA dev question(s), levels {', '.join(args.levels)}; {len(convs)} "
        f"conversation(s); budget {args.minutes:g} min",
        flush=True,
    )
    fan: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []

    def save() -> None:
        summary = {
            "model": model_name,
            "threads": args.threads,
            "chat_effort": args.chat_effort,
            "home": str(settings.home),
            "argv": sys.argv[1:],
            "levels": level_rows(fan, args.levels),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "summary": summary,
                    "fanoutqa": fan,
                    "conversations": chat,
                    "scripts": [[asdict(t) for t in c] for c in convs],
                },
                indent=1,
                ensure_ascii=False,
                default=str,
            ),
            encoding="utf-8",
        )

    chat_budget = budget * args.chat_share if convs else 0.0
    fan_deadline = started + budget - chat_budget if budget else None
    if questions and args.levels:
        run_fanoutqa(engine, questions, args.levels, args.model, fan_deadline, fan, save)
    fan_s = time.perf_counter() - started
    if convs:
        chat_deadline = started + budget if budget else None
        run_conversations(
            engine, convs, args.chat_effort, args.model, args.turn_max_tokens, chat_deadline, chat, save
        )
    save()

    rows = level_rows(fan, args.levels)
    n_done = len({r["id"] for r in fan})
    if rows:
        print_level_table(rows, n_done, model_name, args.threads)
    if chat:
        print_conversation_summary(chat, args.chat_effort)
    total = time.perf_counter() - started
    print(
        f"\nwall time: {total / 60:.1f} min (FanOutQA part {fan_s / 60:.1f} min, incl. loading); "
        f"details: {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
