"""Page extraction benchmark: how long reading one HTML page takes, as a web answer reads it.

Every web answer reads its pages through :func:`groundglass.answer.index.extract.html_document`, and so
does ``groundglass index add`` for each HTML file. The page's publication date comes from its markup
only (htmldate's fast mode). Baseline, measured in the same run: htmldate's extensive search, which
also hands date-like phrases in the text to dateparser (trafilatura's default, and this project's until
the change).

1. A question's pages in a new process (what ``groundglass ask`` pays): for each set of pages, one
   process per setting reads them in turn; medians of the wall time, and the ratio.
2. The corpus in one process (warm): seconds per page (p50, p95, total) for each setting, alternating
   page by page, and how many pages each setting dates.

The pages are Python 3.11's HTML documentation (Debian's ``python3.11-doc``, the docs eval's corpus).

    .venv/bin/python -m bench.bench_extract [--pages 80]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.docqa_data import PYTHON, corpus_pages
from groundglass.answer.index import extract

# what extract.py passes, and the baseline: the same with htmldate's extensive search
SETTINGS = {
    "markup": dict(extract._DATE_FROM_MARKUP),
    "extensive": {**extract._DATE_FROM_MARKUP, "extensive_search": True},
}
# the pages three questions of the docs eval read (search results for json.dumps, lru_cache, strftime)
QUESTION_PAGES = (
    ("library/json.html", "whatsnew/2.6.html", "whatsnew/3.6.html"),
    ("library/functools.html", "whatsnew/3.8.html", "library/functions.html"),
    ("library/time.html", "library/datetime.html", "library/calendar.html"),
)


def read_pages(setting: str, paths: list[Path]) -> list[tuple[float, str | None]]:
    """(seconds, date) of each page, extracted with ``setting``'s date search."""
    extract._DATE_FROM_MARKUP = SETTINGS[setting]
    out = []
    for path in paths:
        data = path.read_bytes()
        started = time.perf_counter()
        doc = extract.html_document(data, f"https://docs.example/{path.name}", path.stem)
        out.append((time.perf_counter() - started, doc.date))
    return out


def in_new_process(setting: str, paths: tuple[Path, ...]) -> float:
    """Wall seconds of a new process that imports the extractor and reads ``paths``."""
    code = (
        "import sys, json; from pathlib import Path; from bench.bench_extract import read_pages; "
        "read_pages(sys.argv[1], [Path(p) for p in json.loads(sys.argv[2])])"
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, setting, json.dumps([str(p) for p in paths])],
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=80, help="corpus pages for part 2 (evenly spread)")
    ap.add_argument("--rounds", type=int, default=2, help="new processes per setting and page set")
    args = ap.parse_args(argv)
    root = PYTHON.root
    if not root.is_dir():
        print(f"skipped: {PYTHON.install_hint()}")
        return 0

    print("1. a question's pages in a new process (import + 3 pages), wall seconds")
    ratios = []
    for pages in QUESTION_PAGES:
        paths = tuple(root / p for p in pages)
        times: dict[str, list[float]] = {s: [] for s in SETTINGS}
        for r in range(args.rounds):
            order = list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS))
            for setting in order:
                times[setting].append(in_new_process(setting, paths))
        new, base = (statistics.median(times[s]) for s in ("markup", "extensive"))
        ratios.append(new / base)
        print(
            f"   {' + '.join(pages)}: markup {new:.2f} s, extensive (baseline) {base:.2f} s, "
            f"ratio {new / base:.2f}"
        )
    print(f"   median ratio {statistics.median(ratios):.2f}")

    every = corpus_pages(root, PYTHON.dirs, PYTHON.skip)
    step = max(1, len(every) // max(1, args.pages))
    sample = [root / p for p in every[::step][: args.pages]]
    read_pages("markup", sample[:2])  # imports and first-use set-up stay out of part 2
    read_pages("extensive", sample[:2])
    seconds: dict[str, list[float]] = {s: [] for s in SETTINGS}
    dated = dict.fromkeys(SETTINGS, 0)
    for i, path in enumerate(sample):
        order = list(SETTINGS) if i % 2 == 0 else list(reversed(SETTINGS))
        for setting in order:
            ((s, date),) = read_pages(setting, [path])
            seconds[setting].append(s)
            dated[setting] += date is not None
    print(f"\n2. {len(sample)} corpus pages in one process, seconds per page")
    for setting in SETTINGS:
        xs = sorted(seconds[setting])
        p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
        label = setting + (" (baseline)" if setting == "extensive" else "")
        print(
            f"   {label}: p50 {statistics.median(xs):.3f}, p95 {p95:.3f}, total {sum(xs):.1f} s; "
            f"{dated[setting]} pages dated"
        )
    total = {s: sum(v) for s, v in seconds.items()}
    print(f"   ratio markup/extensive (total): {total['markup'] / total['extensive']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
