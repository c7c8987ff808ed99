"""How often the answer check passes a correct value and fails an invented one (no model needed).

Sentences built from FanOutQA dev sub-questions whose gold answer is written in the summary of their
evidence page (the built-in Wikipedia corpus), each judged against that page as its cited source:

- **correct**: "<sub-question>: <gold answer> [1]." - the value as the source writes it (cases
  whose page gives it otherwise, rounded or spelled out, are left out); a check that fails it would
  decline an answerable question;
- **invented**: the same sentence with the value changed: a number moved (+7, or x1.5 for large
  ones), a name swapped for the gold answer of another sub-question - the value is in no source;
- **restated**: the sub-question's own words and a marker, no answer at all.

Measured: the share of sentences marked supported by ``cite.attribute(..., question=q)`` (support
score, values and restatement), beside the baseline measured in the same run on the same sentences:
the support score alone (score >= ``retrieval.min_support``), which is what marked invented values
supported before.

    .venv/bin/python -m bench.bench_grounding [--limit 400]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from typing import Any

from bench.answer_match import found, normalize
from bench.fanoutqa_data import dev_questions, walk


def cases(limit: int, seed: int = 5) -> list[dict[str, Any]]:
    from groundglass.answer.index.builtin import wikipedia_documents

    pages = {d.title: d.text for d in wikipedia_documents()}
    raw = []
    for q in dev_questions():
        for d in walk(q):
            title = (d.get("evidence") or {}).get("title")
            gold = d.get("answer")
            if title not in pages or not isinstance(gold, (str, int, float)) or isinstance(gold, bool):
                continue
            text = str(gold) if not isinstance(gold, float) else f"{gold:g}"
            if not text.strip() or normalize(text) not in normalize(pages[title]):
                continue  # the summary does not write it: a model could only round or guess it
            raw.append({"question": d["question"], "title": title, "page": pages[title], "gold": text})
    rng = random.Random(seed)
    rng.shuffle(raw)
    raw = raw[:limit]
    names = [c["gold"] for c in raw if not re.search(r"\d", c["gold"])]
    for c in raw:
        c["invented"] = invent(c["gold"], names, c["page"], rng)
    return [c for c in raw if c["invented"] is not None]


def invent(gold: str, names: list[str], page: str, rng: random.Random) -> str | None:
    """``gold`` with its value changed to one the page does not hold (None when none is found)."""
    m = re.search(r"\d[\d,]*(?:\.\d+)?", gold)
    if m:
        value = float(m.group(0).replace(",", ""))
        new = value + 7 if value < 10_000 else value * 1.5
        shown = f"{int(new):,}" if new == int(new) else f"{new:g}"
        return gold[: m.start()] + shown + gold[m.end() :]
    for _ in range(20):
        other = rng.choice(names)
        if other.lower() != gold.lower() and not found(other, page):
            return other
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=400, help="sub-questions at most (default 400)")
    args = ap.parse_args(argv)
    from groundglass.answer import cite
    from groundglass.answer.embeddings import get_embedder
    from groundglass.answer.types import Source
    from groundglass.config import load_settings

    floor = load_settings().retrieval.min_support
    encoder = get_embedder()
    rows = cases(args.limit)
    kinds = ("correct", "invented", "restated")
    passed: dict[tuple[str, str], int] = {(k, m): 0 for k in kinds for m in ("score", "checked")}
    started = time.perf_counter()
    for c in rows:
        source = [Source(url="u", title=c["title"], text=c["page"])]
        q = c["question"].rstrip("?")
        sentences = {
            "correct": f"{q}: {c['gold']} [1].",
            "invented": f"{q}: {c['invented']} [1].",
            "restated": f"{q} [1].",
        }
        for kind, sentence in sentences.items():
            checked = cite.attribute(sentence, source, encoder, floor, question=c["question"])
            passed[(kind, "score")] += all(bool(a.citations) and a.support >= floor for a in checked)
            passed[(kind, "checked")] += all(a.supported for a in checked)
    seconds = time.perf_counter() - started
    n = len(rows)
    print(
        f"{n} FanOutQA dev sub-questions whose gold answer is in their page's summary; "
        f"{seconds / max(n, 1) * 1000:.0f} ms per case (3 sentences, both verdicts)"
    )
    print("share marked supported      | value check | baseline: support score alone | ratio")
    for kind in kinds:
        new, old = passed[(kind, "checked")] / n, passed[(kind, "score")] / n
        ratio = f"{new / old:.2f}" if old else "-"
        print(f"{kind:<27} | {new:>11.3f} | {old:>29.3f} | {ratio}")
    print("(correct: higher is better; invented and restated: lower is better)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
