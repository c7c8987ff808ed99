"""The documentation eval's scoring (correctness, citations, declines) and its question set's checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from bench.docqa_data import (
    DATA_FILE,
    DOCS_ROOT,
    KINDS,
    POSTGRESQL,
    Question,
    corpus_pages,
    interleave,
    load,
    matches,
    verify,
)
from bench.docqa_score import (
    citation_precision,
    cited_pages,
    correct,
    gold_cited,
    is_decline,
    page_key,
    score,
    summarize,
)

BASES = ["http://127.0.0.1:8123/docs", "file:///srv/pydocs/html"]
SINGLE = Question(
    id="s",
    kind="single",
    question="What is the default maxsize of functools.lru_cache?",
    gold_pages=("library/functools.html",),
    answer=(("128",),),
)
TWO = Question(
    id="t",
    kind="two",
    question="Default levels of gzip.open and zlib.compress?",
    gold_pages=("library/gzip.html", "library/zlib.html"),
    answer=(("9", "nine"), ("-1", "Z_DEFAULT_COMPRESSION")),
)
NONE = Question(
    id="u",
    kind="none",
    question="What does json.dumps's sort_arrays do?",
    gold_pages=("library/json.html",),
    absent=("sort_arrays",),
)
URLS = [
    "http://127.0.0.1:8123/docs/library/gzip.html#gzip.open",
    "file:///srv/pydocs/html/library/zlib.html",
    "http://127.0.0.1:8123/docs/library/os.html",
    "https://example.org/elsewhere",
]


def test_correct_needs_every_item_and_accepts_alternatives_and_patterns() -> None:
    assert correct(SINGLE, "The default maxsize is 128 [1].")
    assert not correct(SINGLE, "The default maxsize is 1280 [1].")  # a number is matched whole
    assert not correct(SINGLE, "It caches the most recent calls [1].")
    assert correct(TWO, "gzip.open uses 9 [1]; zlib.compress uses Z_DEFAULT_COMPRESSION [2].")
    assert not correct(TWO, "gzip.open uses compresslevel 9 [1].")  # half of a two-page answer
    assert not correct(SINGLE, "It is 128 [1].", declined=True)  # a declined answer is not a right one
    assert not correct(NONE, "I don't know.")  # unanswerable questions are scored by declines instead
    assert matches("re:min\\s*\\(\\s*32", "min(32, os.cpu_count() + 4)")
    assert not matches("re:min\\s*\\(\\s*32", "max(32, 4)")


def test_markers_are_not_read_as_numbers() -> None:
    q = Question(id="x", kind="single", question="?", gold_pages=("a.html",), answer=(("4",),))
    assert not correct(q, "The default protocol is described in [4].")
    assert correct(q, "The default protocol is 4 [1].")


def test_page_key_maps_site_and_file_urls_and_ignores_fragments_and_other_hosts() -> None:
    assert page_key(URLS[0], BASES) == "library/gzip.html"
    assert page_key(URLS[1], BASES) == "library/zlib.html"
    assert page_key("https://example.org/elsewhere", BASES) is None


def test_cited_pages_precision_and_gold_cited() -> None:
    cited = cited_pages("Level 9 [1][1] and -1 [2], see also [3] and [9].", URLS, BASES)
    # distinct, in order of first use; [9] points past the sources: a citation of nothing
    assert cited == ["library/gzip.html", "library/zlib.html", "library/os.html", None]
    assert gold_cited(TWO, cited) == 1.0
    assert citation_precision(TWO, cited) == pytest.approx(2 / 4)
    assert gold_cited(TWO, ["library/gzip.html"]) == 0.5
    assert citation_precision(TWO, []) is None  # no citations: precision is undefined, not 0 or 1


def test_a_single_page_question_s_gold_pages_are_alternatives() -> None:
    both = replace(SINGLE, gold_pages=("library/zlib.html", "library/gzip.html"))
    assert gold_cited(both, ["library/gzip.html"]) == 1.0  # either page states the fact
    assert gold_cited(both, ["library/os.html"]) == 0.0
    assert citation_precision(both, ["library/gzip.html", "library/os.html"]) == 0.5


@pytest.mark.parametrize(
    ("text", "declined"),
    [
        ("I don't know.", True),
        ("The sources do not mention a sort_arrays parameter.", True),
        ("The provided sources don't say what sort_arrays does [1].", True),
        ("I could not find this in the documentation.", True),
        ("There is no sort_arrays parameter in json.dumps [1].", True),
        ("This option is not documented in the sources.", True),
        ("[1][2]", True),  # markers only: nothing was answered
        ("os.cpu_count() returns None if the number of CPUs cannot be determined [1].", False),
        ("The default is 4300 digits [1].", False),
        ("It does not raise; it returns None [2].", False),
        ("PostgreSQL does not have a setting named work_turbo [1].", True),
        ("The value is not found in the provided sources.", True),
        ("The instr() function returns 0 when the substring is not found. [1]", False),
        ("The .autosave dot-command does not have a direct effect on the database itself. [1]", False),
    ],
)
def test_decline_detection(text: str, declined: bool) -> None:
    assert is_decline(text) is declined


def test_score_and_summary_over_a_run() -> None:
    rows = [
        score(
            SINGLE,
            "The default maxsize is 128 [1].",
            ["http://127.0.0.1:8123/docs/library/functools.html"],
            BASES,
            10.0,
        ),
        score(SINGLE, "It is 64 [1].", URLS, BASES, 30.0),
        score(TWO, "9 [1] and -1 [2].", URLS, BASES, 20.0),
        score(NONE, "The default is False [1].", URLS, BASES, 40.0),
        score(NONE, "Some text.", URLS, BASES, 50.0, flagged_declined=True),
    ]
    s = summarize(rows)
    assert s["n"] == {"single": 2, "two": 1, "none": 2}
    assert s["correct_single"] == 0.5 and s["correct_two"] == 1.0
    assert s["gold_cited_single"] == 0.5 and s["gold_cited_two"] == 1.0
    assert s["precision_single"] == 0.5 and s["precision_two"] == 1.0
    assert s["declines_none"] == 1 and s["declines_answerable"] == 0
    assert s["seconds_p50"] == 30.0


def test_the_question_set_loads_with_every_kind_and_interleaves(tmp_path: Path) -> None:
    questions = load()
    counts = {k: sum(q.kind == k for q in questions) for k in KINDS}
    assert len(questions) >= 60 and counts["single"] >= 30 and counts["two"] >= 15 and counts["none"] >= 15
    first = interleave(questions)[:6]
    assert {q.kind for q in first} == set(KINDS)  # a short run still measures every kind
    assert sorted(q.id for q in interleave(questions)) == sorted(q.id for q in questions)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"id": "x", "kind": "two", "question": "?", "gold_pages": ["a.html"], "answer": [["1"]]})
        + "\n"
    )
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: a two-page question needs two gold pages"):
        load(bad)


@pytest.mark.skipif(not DOCS_ROOT.is_dir(), reason="needs Debian's python3.11-doc")
def test_every_answer_is_on_its_gold_page_and_every_unanswerable_name_is_nowhere() -> None:
    questions = load(DATA_FILE)
    assert verify(questions) == []
    wrong = Question(
        id="w", kind="single", question="?", gold_pages=("library/functools.html",), answer=(("4096",),)
    )
    exists = Question(
        id="e", kind="none", question="?", gold_pages=("library/json.html",), absent=("sort_keys",)
    )
    problems = verify([wrong, exists])
    assert any(p.startswith("w: none of ['4096'] is on library/functools.html") for p in problems)
    assert any(p.startswith("e: 'sort_keys' occurs on library/json.html") for p in problems)


@pytest.mark.skipif(not POSTGRESQL.root.is_dir(), reason="needs Debian's postgresql-doc-15")
def test_the_postgresql_set_holds_its_answers_on_its_gold_pages() -> None:
    questions = load(POSTGRESQL.data_file)
    assert {q.kind for q in questions} == set(KINDS)
    assert verify(questions, POSTGRESQL.root, POSTGRESQL.dirs) == []
    pages = corpus_pages(POSTGRESQL.root, POSTGRESQL.dirs)
    assert "limits.html" in pages and len(pages) > 1000  # the whole manual, a flat folder
