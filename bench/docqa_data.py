"""The documentation QA sets: ``bench/data/docqa.jsonl`` over Python 3.11's HTML documentation (the
main set), ``bench/data/docqa_postgresql.jsonl`` over PostgreSQL 15's (a second manual of another make:
DocBook pages, settings in definition lists, limits in tables) and ``bench/data/docqa_sqlite.jsonl`` over
SQLite's (a third, held out: hand-written pages, PRAGMAs, limits, result codes, the shell's dot-commands)
``bench/data/docqa_apache.jsonl`` over Apache httpd 2.4's (a fourth, held out: directives, programs) and
``bench/data/docqa_git.jsonl`` over Git 2.39's (a fifth, held out: asciidoc man pages, config variables,
options) and ``bench/data/docqa_node.jsonl`` over Node.js 18's API reference (a sixth, held out) and
``bench/data/docqa_postfix.jsonl`` over Postfix 3.7's manual (a seventh, held out: man pages, READMEs and
one page of every parameter with its default).

The pages come from Debian's packages (:data:`CORPORA`: ``python3.11-doc``, ``postgresql-doc-15``,
``sqlite3-doc``, ``apache2-doc``, ``git-doc``, ``nodejs-doc``, ``postfix-doc``).
Each line of a set is one question:

- ``kind``: ``single`` (the answer is on one page), ``two`` (it needs two pages) or ``none`` (the docs
  cannot answer it: a setting, function or flag that does not exist, or a future version);
- ``gold_pages``: paths relative to the documentation root (for ``none``: where the answer would be);
- ``answer`` (answerable kinds): a list of required items, each a list of acceptable alternatives; an
  alternative is a string matched with :func:`bench.answer_match.found`, or ``re:PATTERN``, a regular
  expression searched case-insensitively. For ``two``, item *i* is stated on ``gold_pages[i]``;
- ``absent`` (``none``): strings (or ``re:`` patterns) that occur on no page of the corpus, which is
  what makes the question unanswerable.

:func:`verify` checks those claims against the installed pages, so a typo in an answer is caught
before it costs an evaluation run.

    .venv/bin/python -m bench.docqa_data [--corpus NAME]   # verify a set against the docs
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from bench.answer_match import found

DOCS_ROOT = Path("/usr/share/doc/python3.11/html")
DATA_FILE = Path(__file__).resolve().parent / "data" / "docqa.jsonl"
# The manual's prose, leaving out the C API, distutils and the generated indexes (genindex-*.html
# holds every name, so it would answer "does X exist?" questions by itself).
CORPUS_DIRS = ("library", "using", "whatsnew", "tutorial", "reference")
Kind = Literal["single", "two", "none"]
KINDS: tuple[Kind, ...] = ("single", "two", "none")


@dataclass(frozen=True)
class Question:
    id: str
    kind: Kind
    question: str
    gold_pages: tuple[str, ...]
    answer: tuple[tuple[str, ...], ...] = ()  # required items, each with its alternatives
    absent: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Corpus:
    """A manual installed by a Debian package, and its question set."""

    name: str
    root: Path
    dirs: tuple[str, ...]  # folders of the manual's prose under root ("": root's own pages)
    data_file: Path
    package: str
    index: str  # the local index eval_docs builds from it
    skip: tuple[str, ...] = ()  # pages of those folders left out (relative paths)
    # (page, text) that only the release the questions were written for has: another release's manual
    # states other defaults, and scored against these answers it reads as a regression
    release: tuple[str, str] | None = None

    def install_hint(self) -> str:
        return (
            f"the {self.name} docs are not at {self.root}; install them with: apt-get install {self.package}"
        )

    def other_release(self) -> str | None:
        """Why the installed manual is not the release the questions were written for, or None."""
        if self.release is None:
            return None
        page, text = self.release
        path = self.root / page
        if text in path.read_text(encoding="utf-8", errors="replace"):
            return None
        return (
            f"{path} is not the {self.name} manual these questions were written for (it lacks {text!r}); "
            f"install Debian's {self.package} of that release"
        )


PYTHON = Corpus("python", DOCS_ROOT, CORPUS_DIRS, DATA_FILE, "python3.11-doc", "pydocs")
POSTGRESQL = Corpus(
    "postgresql",
    Path("/usr/share/doc/postgresql-doc-15/html"),
    ("",),
    DATA_FILE.with_name("docqa_postgresql.jsonl"),
    "postgresql-doc-15",
    "pgdocs",
)
# SQLite 3.40's pages, all of them: pages are chosen by folder, and the generated all-names pages
# (keyword_index.html, doc_*_crossref.html) sit in the root beside the prose, so they are in too.
SQLITE = Corpus(
    "sqlite",
    Path("/usr/share/doc/sqlite3"),
    ("",),
    DATA_FILE.with_name("docqa_sqlite.jsonl"),
    "sqlite3-doc",
    "sqlitedocs",
)
# Apache httpd 2.4's English manual (a fourth, held out: directive pages with a quick-reference table
# of Syntax and Default per directive, the programs' option lists, the rewrite guide).
APACHE = Corpus(
    "apache",
    Path("/usr/share/doc/apache2-doc/manual/en"),
    ("",),
    DATA_FILE.with_name("docqa_apache.jsonl"),
    "apache2-doc",
    "apachedocs",
)
# Git 2.39's manual (a fifth, held out: a page per command with OPTIONS and CONFIGURATION lists).
GIT = Corpus(
    "git",
    Path("/usr/share/doc/git-doc"),
    ("",),
    DATA_FILE.with_name("docqa_git.jsonl"),
    "git-doc",
    "gitdocs",
)
# Node.js 18's API reference (a sixth, held out: a page per module, options listed with "Default:",
# History tables of changed defaults). all.html is every other page in one, left out so that each
# answer has one page.
NODE = Corpus(
    "node",
    Path("/usr/share/doc/nodejs/api"),
    ("",),
    DATA_FILE.with_name("docqa_node.jsonl"),
    "nodejs-doc",
    "nodedocs",
    skip=("all.html",),
    # NodeSource's nodejs package puts its own release's pages at the same place (v20 states other
    # defaults: a stream's highWaterMark is 64 KiB there, 16 KiB in 18)
    release=("index.html", "Node.js v18."),
)
# Postfix 3.7's manual (a seventh, held out: man pages whose parameter summaries state each default in
# parentheses, READMEs, and postconf.5.html, one 845 KB page of every main.cf parameter with its
# "(default: ...)", so that the page holding an answer is also the one holding a thousand others).
POSTFIX = Corpus(
    "postfix",
    Path("/usr/share/doc/postfix/html"),
    ("",),
    DATA_FILE.with_name("docqa_postfix.jsonl"),
    "postfix-doc",
    "postfixdocs",
)
CORPORA = {c.name: c for c in (PYTHON, POSTGRESQL, SQLITE, APACHE, GIT, NODE, POSTFIX)}


def load(path: Path = DATA_FILE) -> list[Question]:
    """The questions in file order; a ``ValueError`` naming the line for a malformed one."""
    out: list[Question] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            kind = row["kind"]
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} is none of {KINDS}")
            q = Question(
                id=row["id"],
                kind=kind,
                question=row["question"],
                gold_pages=tuple(row["gold_pages"]),
                answer=tuple(tuple(item) for item in row.get("answer", [])),
                absent=tuple(row.get("absent", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{n}: {exc}") from exc
        if (q.kind == "none") != (not q.answer):
            raise ValueError(f"{path}:{n}: answerable questions need an answer, unanswerable ones none")
        if q.kind == "two" and (len(q.gold_pages) != 2 or len(q.answer) != 2):
            raise ValueError(f"{path}:{n}: a two-page question needs two gold pages and two answer items")
        out.append(q)
    return out


def interleave(questions: list[Question]) -> list[Question]:
    """The questions reordered so that any prefix keeps the kinds in proportion (single, two, none
    spread evenly), so that ``--limit`` and a time budget still measure every kind."""
    by_kind = {k: [q for q in questions if q.kind == k] for k in KINDS}
    total = len(questions)
    placed: list[tuple[float, int, Question]] = []
    for rank, kind in enumerate(KINDS):
        group = by_kind[kind]
        for i, q in enumerate(group):
            placed.append(((i + 0.5) / len(group) * total, rank, q))
    return [q for _, _, q in sorted(placed, key=lambda t: (t[0], t[1]))]


def matches(alternative: str, text: str) -> bool:
    """One alternative (plain string or ``re:PATTERN``) against a text."""
    if alternative.startswith("re:"):
        return re.search(alternative[3:], text, re.IGNORECASE | re.DOTALL) is not None
    return found(alternative, text)


def corpus_pages(
    root: Path = DOCS_ROOT, dirs: tuple[str, ...] = CORPUS_DIRS, skip: tuple[str, ...] = ()
) -> list[str]:
    """The corpus's HTML pages, relative to ``root``, but for those in ``skip``."""
    pages = {p.relative_to(root).as_posix() for d in dirs for p in (root / d).rglob("*.html")}
    return sorted(pages - set(skip))


@lru_cache(maxsize=1024)
def page_text(rel: str, root: Path = DOCS_ROOT) -> str:
    """The page's visible text (all of it, tags stripped), whitespace collapsed: what a reader of the
    page sees, independent of the extraction under test."""
    import lxml.html

    tree = lxml.html.fromstring((root / rel).read_bytes())
    for bad in tree.xpath("//script|//style"):
        bad.drop_tree()
    return re.sub(r"\s+", " ", tree.text_content()).strip()


def main_text(rel: str, root: Path = DOCS_ROOT) -> tuple[str, str]:
    """(title, text) of the page's main content (Sphinx's ``div.body``), for the loopback search."""
    import lxml.html

    tree = lxml.html.fromstring((root / rel).read_bytes())
    # DocBook's (PostgreSQL's) navigation bars are not the page's text either
    for bad in tree.xpath(
        "//script|//style|//a[@class='headerlink']|//div[@class='navheader']|//div[@class='navfooter']"
    ):
        bad.drop_tree()
    titles = tree.xpath("//title")
    title = re.sub(r"\s+", " ", titles[0].text_content()).strip() if titles else rel
    title = title.split(" — Python ")[0]
    body = (
        tree.xpath("//div[@role='main']")
        or tree.xpath("//div[@class='body']")
        or tree.xpath("//div[@id='apicontent']")  # Node.js's
        or [tree]
    )
    return title, re.sub(r"\s+", " ", body[0].text_content()).strip()


def verify(
    questions: list[Question],
    root: Path = DOCS_ROOT,
    dirs: tuple[str, ...] = CORPUS_DIRS,
    skip: tuple[str, ...] = (),
) -> list[str]:
    """Problems with the set: gold pages missing or outside the corpus, answers not on their gold
    page, "absent" strings present somewhere in the corpus, repeated ids. Empty when all is well."""
    problems: list[str] = []
    seen: set[str] = set()
    pages = corpus_pages(root, dirs, skip)
    for q in questions:
        if q.id in seen:
            problems.append(f"{q.id}: repeated id")
        seen.add(q.id)
        for page in q.gold_pages:
            if not (root / page).is_file():
                problems.append(f"{q.id}: gold page {page} does not exist")
            elif ("" not in dirs and page.split("/")[0] not in dirs) or page in skip:
                problems.append(f"{q.id}: gold page {page} is outside the corpus {dirs}")
        if any(not (root / page).is_file() for page in q.gold_pages):
            continue
        for i, item in enumerate(q.answer):
            page = q.gold_pages[i] if q.kind == "two" else q.gold_pages[0]
            if not any(matches(alt, page_text(page, root)) for alt in item):
                problems.append(f"{q.id}: none of {list(item)} is on {page}")
    absent = [(q, s) for q in questions for s in q.absent]
    if absent:
        for page in pages:
            text = page_text(page, root)
            for q, s in absent:
                hit = (
                    re.search(s[3:], text, re.IGNORECASE | re.DOTALL)
                    if s.startswith("re:")
                    else s.lower() in text.lower()
                )
                if hit:
                    problems.append(f"{q.id}: {s!r} occurs on {page}, so the docs may answer it")
    return problems


def copy_corpus(
    dest: Path, root: Path = DOCS_ROOT, dirs: tuple[str, ...] = CORPUS_DIRS, skip: tuple[str, ...] = ()
) -> list[str]:
    """Copy the corpus's pages under ``dest`` (same relative paths): the folder both modes read, so the
    local index holds exactly the pages the loopback site serves. Returns the relative paths."""
    pages = corpus_pages(root, dirs, skip)
    for rel in pages:
        target = dest / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, target)
    return pages


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Verify a documentation QA set against the installed docs.")
    ap.add_argument("--corpus", choices=sorted(CORPORA), default=PYTHON.name)
    corpus = CORPORA[ap.parse_args(argv).corpus]
    if not corpus.root.is_dir():
        print(corpus.install_hint(), file=sys.stderr)
        return 2
    questions = load(corpus.data_file)
    problems = verify(questions, corpus.root, corpus.dirs, corpus.skip)
    counts = {k: sum(q.kind == k for q in questions) for k in KINDS}
    pages = corpus_pages(corpus.root, corpus.dirs, corpus.skip)
    print(f"{len(questions)} questions {counts}, corpus {len(pages)} pages under {corpus.root}")
    for p in problems:
        print("PROBLEM", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
