"""Answers on real documentation: groundglass vs a naive pipeline, same model, same search, one run.

The set is ``bench/data/docqa.jsonl`` (see :mod:`bench.docqa_data`): single-page facts, two-page facts
and questions the docs cannot answer, over Python 3.11's HTML manual from Debian's ``python3.11-doc``
(library, using, whatsnew, tutorial, reference: a few hundred long pages). ``--corpus postgresql`` runs
``bench/data/docqa_postgresql.jsonl`` over PostgreSQL 15's manual (``postgresql-doc-15``: 1,169 DocBook
pages), a second manual of another make, so what is tuned on the first is measured on one it was not;
``--corpus sqlite`` runs ``bench/data/docqa_sqlite.jsonl`` over SQLite's manual (``sqlite3-doc``: 766
hand-written pages), a third, held out; ``--corpus apache`` runs ``bench/data/docqa_apache.jsonl`` over
Apache httpd 2.4's English manual (``apache2-doc``: 244 pages), a fourth, held out after the third was
tuned on; ``--corpus git``, ``--corpus node`` and ``--corpus postfix`` run Git 2.39's manual (``git-doc``),
Node.js 18's API reference (``nodejs-doc``) and Postfix 3.7's manual (``postfix-doc``: 136 pages, one of
them every main.cf parameter), a fifth, sixth and seventh.

Modes (``--mode web|index|both``):

- **web**: a loopback site on 127.0.0.1 serves the pages and a SearXNG JSON API over them (BM25,
  :mod:`bench.docqa_site`); groundglass runs ``groundglass ask --source web`` with ``search.searxng``
  pointing there (``fetch.allow_private`` on, since it is 127.0.0.1); the naive pipeline asks
  the same API;
- **index**: ``groundglass index add <pages> --index pydocs`` once (incremental on re-runs, timed), then
  ``groundglass ask --index pydocs``; the naive pipeline takes the top pages of the same index's search.

Both pipelines run as one process per question, the way a user runs a command, so each answer's
seconds are end to end: Python start, imports, model load (a few seconds, paid by both), search, read,
rank, prompt, generation. The naive pipeline is :mod:`bench.naive_rag` (llama-cpp-python on the same
GGUF file, same threads). Which of the two goes first alternates per question, so neither always
finds the other's page cache warm. groundglass starts with an empty cache of its own (a home under
``--work`` whose ``models`` and ``indexes`` link to the user's): pages it read for one question are
kept for the next, as for any user, but none is read before the run starts.

Scores (:mod:`bench.docqa_score`): correct (single / two-page), gold page cited, citation precision,
declines on unanswerable questions, and seconds per answer (p50); the ratio is groundglass / naive.
Every answer is written to ``--out`` as it finishes, so an interrupted run keeps what it measured.

    .venv/bin/python -m bench.eval_docs [--corpus python|postgresql|sqlite|apache|git|node|postfix]
        [--mode both] [--limit N] [--model default] [--minutes 60] [--out runs/eval_docs.json]

Timings depend on what else runs on the machine: the load average at start and end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.docqa_data import CORPORA, PYTHON, Corpus, Question, copy_corpus, interleave, load
from bench.docqa_score import Scored, correct, is_decline, score, summarize

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ("groundglass", "naive")
SUBPROCESS_TIMEOUT_S = 900


def write_config(
    path: Path, searxng_url: str, threads: int | None, model: str | None = None, extra: Sequence[str] = ()
) -> None:
    """The config both pipelines read: the loopback SearXNG, private addresses allowed (the site is on
    127.0.0.1), and ``extra`` lines (whole TOML tables) after it."""
    llm = ([f'model = "{model}"'] if model else []) + ([f"threads = {threads}"] if threads else [])
    lines = [
        *(["[llm]", *llm] if llm else []),
        "[search]",
        'providers = ["searxng"]',
        "cache_ttl_s = 0",
        "[search.searxng]",
        f'base_url = "{searxng_url}"',
        "[fetch]",
        "allow_private = true",
        *extra,
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cold_home(work: Path) -> Path:
    """A groundglass home for this run whose cache starts empty: a user's first questions on a new
    machine read and embed every page afresh, and the naive pipeline keeps nothing between questions.
    Its ``models`` and ``indexes`` are links to the user's (what ``make setup-demo`` installs and the
    index build makes); the cache fills as the run goes, as it would for that user."""
    from groundglass.config import load_settings

    user = load_settings().home
    home = (work / "home").resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    for name in ("models", "indexes"):
        (user / name).mkdir(parents=True, exist_ok=True)
        (home / name).symlink_to(user / name, target_is_directory=True)
    return home


def git_head() -> str:
    try:
        return subprocess.run(
            ["git", "log", "-1", "--format=%h %cI %s"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_json(
    cmd: list[str], env: dict[str, str], failures: Path | None = None
) -> tuple[dict[str, Any] | None, float, str]:
    """(parsed stdout, wall seconds, error text) of one command.

    The error text keeps the end of stderr; a failed command's whole stderr (a native crash's
    faulthandler dump lists every thread, the one that crashed is rarely the last) is also written
    to a new file in ``failures``, whose name the error text gives.
    """
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - started, f"timed out after {SUBPROCESS_TIMEOUT_S} s"
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        kept = ""
        if failures is not None:
            failures.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=failures, prefix=f"exit{done.returncode}-", suffix=".txt", delete=False
            ) as f:
                f.write(" ".join(cmd) + "\n\n" + done.stderr)
            kept = f" (whole stderr: {f.name})"
        return None, seconds, f"exit {done.returncode}{kept}: {done.stderr.strip()[-600:]}"
    try:
        return json.loads(done.stdout), seconds, ""
    except json.JSONDecodeError:
        return None, seconds, f"not JSON: {done.stdout[:300]!r}"


def ours(
    question: Question, mode: str, args: argparse.Namespace, cfg: Path, env: dict[str, str]
) -> tuple[str, list[str], bool, float, dict[str, Any]]:
    exe = str(Path(sys.executable).parent / "groundglass")
    cmd = [exe, "ask", question.question, "--json", "--model", args.model, "--config", str(cfg)]
    cmd += ["--source", "web"] if mode == "web" else ["--source", "index", "--index", args.index]
    out, seconds, error = run_json(cmd, env, args.work / "failures")
    if out is None:
        return "", [], False, seconds, {"error": error}
    content = out["choices"][0]["message"]["content"] or ""
    urls = [r["url"] for r in out.get("search_results", [])]
    # what the check refused or left out, so a wrong or declined answer can be traced afterwards
    extra = {"usage": out.get("usage", {}), "grounding": out.get("grounding", {})}
    return content, urls, bool(out.get("declined")), seconds, extra


def naive(
    question: Question, mode: str, args: argparse.Namespace, cfg: Path, searxng: str, env: dict[str, str]
) -> tuple[str, list[str], bool, float, dict[str, Any]]:
    cmd = [
        sys.executable,
        "-m",
        "bench.naive_rag",
        question.question,
        "--mode",
        mode,
        "--model",
        args.model,
        "--config",
        str(cfg),
        "--searxng",
        searxng,
        "--index",
        args.index,
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.naive_no_repack:
        cmd += ["--no-repack"]
    out, seconds, error = run_json(cmd, env, args.work / "failures")
    if out is None:
        return "", [], False, seconds, {"error": error}
    return out["answer"], out["sources"], False, seconds, {"timings": out["timings"], "usage": out["usage"]}


def build_index(args: argparse.Namespace, html: Path, cfg: Path, env: dict[str, str]) -> dict[str, Any]:
    exe = str(Path(sys.executable).parent / "groundglass")
    started = time.perf_counter()
    cmd = [exe, "index", "add", str(html), "--index", args.index, "--quiet", "--config", str(cfg)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        raise SystemExit(f"groundglass index add failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    # ``index add`` never drops documents, so an index built earlier from another copy of the pages holds
    # every page twice: the two copies take each other's places, and the scorer cannot name the other's
    # pages (a run from a new --work folder scored 0.03 gold pages cited in index mode).
    stats = subprocess.run(
        [exe, "index", "stats", "--index", args.index, "--json", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
    )
    documents = json.loads(stats.stdout).get("documents") if stats.returncode == 0 else None
    pages = sum(1 for _ in html.rglob("*.html"))
    if documents is not None and documents > pages:
        raise SystemExit(
            f"index {args.index!r} holds {documents} documents for the {pages} pages of {html}: it was "
            f"built from another copy too; run `groundglass index remove {args.index}` or give --index NEW"
        )
    return {"seconds": seconds, "output": done.stdout.strip()[-600:]}


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    head = (
        "| mode | pipeline | correct, single | correct, two pages | gold page cited (1 / 2) | "
        "citation precision (1 / 2) | declines (unanswerable) | s/answer p50 |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for mode, per in summary.items():
        for name in PIPELINES:
            s = per.get(name)
            if not s:
                continue
            lines.append(
                f"| {mode} | {name} | {fmt(s['correct_single'])} | {fmt(s['correct_two'])} | "
                f"{fmt(s['gold_cited_single'])} / {fmt(s['gold_cited_two'])} | "
                f"{fmt(s['precision_single'])} / {fmt(s['precision_two'])} | "
                f"{s['declines_none']} of {s['n']['none']} | {fmt(s['seconds_p50'], 1)} |"
                + (f" ({s['errors']} failed runs left out)" if s["errors"] else "")
            )
        a, b = per.get("groundglass"), per.get("naive")
        if a and b and a["seconds_p50"] and b["seconds_p50"]:
            lines.append(
                f"| {mode} | ratio groundglass / naive | | | | | | "
                f"{a['seconds_p50'] / b['seconds_p50']:.2f}x |"
            )
    return "\n".join(lines)


def rescored(rows: list[dict[str, Any]], corpus: Corpus) -> list[dict[str, Any]]:
    """``rows`` with each answer's decline and correctness judged again by the current scorer (the
    pages it cites are kept as scored), so runs scored by different versions compare."""
    questions = {q.id: q for q in load(corpus.data_file)}
    out = []
    for row in rows:
        if "error" in row or row["id"] not in questions:
            out.append(row)
            continue
        declined = is_decline(row["answer"])
        right = correct(questions[row["id"]], row["answer"], declined)
        out.append({**row, "score": {**row["score"], "declined": declined, "correct": right}})
    return out


def summaries(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        out[mode] = {}
        for name in PIPELINES:
            mine = [r for r in rows if r["mode"] == mode and r["pipeline"] == name]
            # a run that failed (crash, timeout) is reported as such, not scored as a wrong answer
            scored = [Scored(**r["score"]) for r in mine if "error" not in r]
            if mine:
                out[mode][name] = {**summarize(scored), "errors": len(mine) - len(scored)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Documentation QA: groundglass vs a naive pipeline.")
    ap.add_argument("--mode", choices=["web", "index", "both"], default="both")
    ap.add_argument("--limit", type=int, default=None, help="first N questions (kinds interleaved)")
    ap.add_argument("--model", default="default")
    ap.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads for both (default: all cores)"
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="start no new question after this many minutes (0: no limit)",
    )
    ap.add_argument(
        "--corpus", choices=sorted(CORPORA), default=PYTHON.name, help="the manual and its question set"
    )
    ap.add_argument("--index", default=None, help="local index name for --mode index (default: the corpus's)")
    ap.add_argument(
        "--work", type=Path, default=None, help="copy of the pages, config (runs/eval_docs[_CORPUS])"
    )
    ap.add_argument("--out", type=Path, default=None, help="results (runs/eval_docs[_CORPUS].json)")
    ap.add_argument(
        "--naive-no-repack",
        action="store_true",
        help="the naive pipeline loads the weights as stored, as groundglass does for Q4_K on AVX-512",
    )
    ap.add_argument(
        "--table-only",
        action="store_true",
        help="print the table of a saved --out file, its answers scored again by the current scorer",
    )
    args = ap.parse_args(argv)
    corpus = CORPORA[args.corpus]
    suffix = "" if corpus is PYTHON else f"_{corpus.name}"
    args.index = args.index or corpus.index
    args.work = args.work or Path(f"runs/eval_docs{suffix}")
    args.out = args.out or Path(f"runs/eval_docs{suffix}.json")
    if args.table_only:
        if not args.out.is_file():
            ap.error(f"no results at {args.out} (give the run's --out file)")
        saved = json.loads(args.out.read_text(encoding="utf-8"))
        print(table(summaries(rescored(saved["rows"], corpus))))
        return 0
    if not corpus.root.is_dir():
        print(corpus.install_hint(), file=sys.stderr)
        return 2
    if (other := corpus.other_release()) is not None:
        print(other, file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    questions = interleave(load(corpus.data_file))[: args.limit]
    modes = ["web", "index"] if args.mode == "both" else [args.mode]

    from bench.docqa_site import DocSite

    html = (args.work / "html").resolve()
    pages = copy_corpus(html, corpus.root, corpus.dirs, corpus.skip)
    started_site = time.perf_counter()
    site = DocSite(html, pages)
    cfg = (args.work / "config.toml").resolve()
    write_config(cfg, site.searxng_url, args.threads)
    home = cold_home(args.work)
    env = {
        **os.environ,
        "GROUNDGLASS_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    bases = [site.docs_url, html.as_uri()]
    meta: dict[str, Any] = {
        "git": git_head(),
        "model": args.model,
        "naive_weights": "as stored" if args.naive_no_repack else "llama.cpp's default (repacked)",
        "threads": args.threads or "default (all cores)",
        "cores": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "started": time.strftime("%FT%TZ", time.gmtime()),
        "pages": len(pages),
        "corpus": {"name": corpus.name, "root": str(corpus.root), "dirs": list(corpus.dirs)},
        "site_build_s": round(time.perf_counter() - started_site, 1),
        "timing": "each answer is one process (python start + model load + search + read + rank + generate), "
        "for both pipelines; the machine may be shared (see loadavg)",
        "cache": f"groundglass's cache was empty at the start ({home / 'cache'})",
    }
    print(
        f"eval_docs: {len(questions)} questions, modes {modes}, model {args.model}, {len(pages)} pages; "
        f"git {meta['git']}",
        flush=True,
    )
    if "index" in modes:
        print(f"building index {args.index!r} from {html} (incremental) ...", flush=True)
        meta["index_build"] = build_index(args, html, cfg, env)
        print(f"  index ready in {meta['index_build']['seconds']} s", flush=True)
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + args.minutes * 60 if args.minutes > 0 else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for qi, q in enumerate(questions):
            if deadline is not None and time.monotonic() > deadline:
                print(f"time budget of {args.minutes:g} min spent after {qi} questions", flush=True)
                break
            for mode in modes:
                order = PIPELINES if qi % 2 == 0 else PIPELINES[::-1]
                for name in order:
                    run = (
                        ours(q, mode, args, cfg, env)
                        if name == "groundglass"
                        else naive(q, mode, args, cfg, site.searxng_url, env)
                    )
                    answer, urls, flagged, seconds, extra = run
                    s = score(q, answer, urls, bases, round(seconds, 2), flagged)
                    rows.append(
                        {
                            "mode": mode,
                            "pipeline": name,
                            "id": q.id,
                            "question": q.question,
                            "answer": answer,
                            "sources": urls,
                            "score": s.__dict__,
                            **extra,
                        }
                    )
                    mark = "ok" if s.correct else ("declined" if s.declined else "wrong")
                    err = f" ERROR {extra['error'][:200]}" if "error" in extra else ""
                    print(
                        f"[{qi + 1}/{len(questions)}] {mode:5} {name:11} {q.id} {mark:8} {seconds:6.1f}s "
                        f"cited={s.cited} :: {answer[:110]!r}{err}",
                        flush=True,
                    )
                    meta["loadavg_end"] = os.getloadavg()
                    args.out.write_text(
                        json.dumps(
                            {"meta": meta, "summary": summaries(rows), "rows": rows},
                            indent=1,
                            ensure_ascii=False,
                        ),
                        encoding="utf-8",
                    )
    finally:
        site.close()
    print()
    print(
        f"git {meta['git']}; model {args.model}; load average start {meta['loadavg_start']}, "
        f"end {meta.get('loadavg_end')}; {meta['timing']}"
    )
    print(table(summaries(rows)))
    print(f"details: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
