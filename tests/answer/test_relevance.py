"""The relevance gate on real MiniLM vectors: a question of two parts keeps a page for each part."""

from __future__ import annotations

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
