"""The relevance gate on real MiniLM vectors: a question of two parts keeps a page for each part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groundglass.answer.relevance import relevant
from groundglass.answer.types import Source
from groundglass.config import load_settings

QUESTION = (
    "What is the default timeout of sqlite3.connect() in seconds, "
    "and how many executions does timeit.timeit() run by default?"
)
PARTS = [
    "What is the default timeout of sqlite3.connect() in seconds",
    "how many executions does timeit.timeit() run by default",
]
# as the Python manual's pages give them
SQLITE = Source(
    "https://docs.python.org/3/library/sqlite3.html",
    "sqlite3 — DB-API 2.0 interface for SQLite databases",
    "Module functions. sqlite3.connect(database, timeout=5.0, detect_types=0, isolation_level='DEFERRED', "
    "check_same_thread=True). Open a connection to an SQLite database. timeout (float): how many seconds "
    "the connection should wait before raising an OperationalError when a table is locked.",
)
SQLITE_NEWS = Source(
    "https://docs.python.org/3/whatsnew/3.7.html",
    "What's New In Python 3.7",
    "sqlite3. sqlite3.Connection now exposes the backup() method when the underlying SQLite library is at "
    "version 3.6.11 or higher.",
)
TIMEIT = Source(
    "https://docs.python.org/3/library/timeit.html",
    "timeit — Measure execution time of small code snippets",
    "Python Interface. The module defines three convenience functions and a public class: "
    "timeit.timeit(stmt='pass', setup='pass', timer=<default timer>, number=1000000, globals=None). "
    "Create a Timer instance with the given statement, setup code and timer function and run its timeit() "
    "method with number executions.",
)
UNRELATED = Source(
    "https://docs.python.org/3/library/turtle.html",
    "turtle — Turtle graphics",
    "Turtle graphics is an implementation of the popular geometric drawing tools introduced in Logo.",
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):  # -> Settings
    home: Path = tmp_path_factory.mktemp("relevance-home")
    # the margin as tight as the whole question needs to lose timeit's page to sqlite3's
    return load_settings(home=str(home), retrieval__relevance_margin=0.05)


def test_the_whole_question_alone_keeps_only_the_closest_part(settings) -> None:  # type: ignore[no-untyped-def]
    kept = relevant(None, settings, QUESTION, [SQLITE, SQLITE_NEWS, TIMEIT, UNRELATED])
    assert SQLITE in kept and TIMEIT not in kept  # what the engine did before it judged the parts


def test_each_part_keeps_its_best_page_and_the_unrelated_one_goes(settings) -> None:  # type: ignore[no-untyped-def]
    kept = relevant(None, settings, QUESTION, [SQLITE, SQLITE_NEWS, UNRELATED, TIMEIT], parts=PARTS)
    assert kept[:2] == [SQLITE, TIMEIT]  # each part's best first, so that top_k keeps both
    assert UNRELATED not in kept


def _chunks(name: str) -> tuple[str, list[str], list[Source]]:
    """A question, its parts and the chunks its searches found, as read from the manual's pages."""
    data = json.loads((Path(__file__).parents[1] / "data" / "docs_chunks" / name).read_text())
    return data["question"], data["parts"], [Source(**s) for s in data["sources"]]


def _kept_text(name: str, home: Path, n: int) -> str:
    """The texts of the first ``n`` sources the gate keeps of the chunks saved in ``name``."""
    question, parts, chunks = _chunks(name)
    return "\n".join(
        s.text for s in relevant(None, load_settings(home=str(home)), question, chunks, parts=parts)[:n]
    )


def test_each_part_keeps_two_places_and_the_entry_that_defines_its_term_leads_them(tmp_path: Path) -> None:
    # PostgreSQL's pages in the order the searches fused them: the whole question's best (an example
    # table, a passage on Serializable) first, hash_mem_multiplier's entry (which names work_mem and
    # is closer to it for MiniLM) before work_mem's own, and "Read Committed is the default" last
    texts = _kept_text("postgresql_isolation_work_mem.json", tmp_path, 4)
    assert "The default value is four megabytes (4MB)." in texts
    assert "Read Committed is the default isolation level in PostgreSQL." in texts


def test_a_part_that_asks_a_default_puts_the_passage_that_states_one_first(tmp_path: Path) -> None:
    # the local index's 15 candidates for both parts, fused: default_transaction_isolation's entry
    # ("The default is “read committed”.") came 14th, below passages on the Serializable level, and
    # the part's two places went to those
    _, _, chunks = _chunks("postgresql_index_isolation_work_mem.json")
    assert not any("read committed”." in s.text for s in chunks[:10])  # why the pool is larger
    texts = _kept_text("postgresql_index_isolation_work_mem.json", tmp_path, 5)
    assert "The default is “read committed”." in texts
    assert "- work_mem (integer):" in texts


def test_a_default_stated_of_another_program_does_not_take_a_parts_first_place(tmp_path: Path) -> None:
    # Git's pages (GPL-2.0) as the web search read them: git instaweb's "--port ... (Default: 1234)"
    # states a default, and with a whole point for it, it took the first of "On which TCP port does git
    # daemon listen by default"'s places; git daemon's "normally listens on port ... 9418" was cut
    texts = _kept_text("git_daemon_conflict_markers.json", tmp_path, 4)
    assert 'normally listens on port "DEFAULT_GIT_PORT" aka 9418' in texts
    assert "instead of the usual 7-character-long" in texts
