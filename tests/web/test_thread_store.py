"""Threads in the server database, on SQLite and on a real PostgreSQL (tests/server/postgres_server.py):
per project, in order, shared read-only by a second id, deleted with their turns, and text that
PostgreSQL would refuse (NUL characters, over-long titles) stored anyway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select

from groundglass.errors import GroundglassError, NotFoundError
from groundglass.server import db
from groundglass.server.thread_store import MAX_DETAILS_CHARS, ThreadStore


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.db'}"
        eng = create_engine(url)
        db.metadata.create_all(eng)
        yield eng
        eng.dispose()
        return
    from postgres_server import PostgresServer, postgres_bin

    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb): apt-get install -y postgresql (Debian package)")
    server = PostgresServer(bin_dir).start()
    try:
        eng = create_engine(server.create_database("gg_threads"))
        db.metadata.create_all(eng)
        yield eng
        eng.dispose()
    finally:
        server.stop()


def test_threads_belong_to_a_project_keep_their_turns_and_share_read_only(engine: Engine) -> None:
    store = ThreadStore(engine)
    first = store.create("web", "key_a", "  When was the   Eiffel Tower\ncompleted?  ")
    assert first["title"] == "When was the Eiffel Tower completed?" and first["turn_count"] == 0
    other = store.create("elsewhere", "key_b", "x" * 500)
    assert len(other["title"]) == 120 and other["title"].endswith("…")

    details = {
        "search_results": [{"url": "https://en.wikipedia.org/wiki/Eiffel_Tower", "score": 0.9}],
        "attribution": [{"sentence": "It was completed in 1889 [1].", "supported": True}],
    }
    store.add_turn("web", first["id"], "When was it completed?", "In 1889 [1].", details)
    store.add_turn("web", first["id"], "How tall\x00 is it?", "330 metres [1].", {"note": "nul\x00"})
    thread = store.get("web", first["id"])
    assert [t["position"] for t in thread["turns"]] == [0, 1]
    assert thread["turns"][0]["details"] == details
    assert thread["turns"][1]["question"] == "How tall\ufffd is it?"  # NUL made storable everywhere
    assert thread["turns"][1]["details"]["note"] == "nul\x00"  # JSON escapes it: kept as it was

    # each project sees its own threads, the last extended first
    store.add_turn("elsewhere", other["id"], "q", "a", {})
    assert [t["id"] for t in store.list("web")] == [first["id"]]
    assert store.list("web")[0]["turn_count"] == 2
    with pytest.raises(NotFoundError):
        store.get("elsewhere", first["id"])
    with pytest.raises(NotFoundError):
        store.add_turn("elsewhere", first["id"], "q", "a", {})
    with pytest.raises(NotFoundError):
        store.delete("elsewhere", first["id"])

    # sharing: one stable id, readable by anyone with it, until unshared
    share_id = store.share("web", first["id"])
    assert share_id.startswith("shr_") and store.share("web", first["id"]) == share_id
    shared = store.shared(share_id)
    assert shared["read_only"] and len(shared["turns"]) == 2
    store.unshare("web", first["id"])
    with pytest.raises(NotFoundError):
        store.shared(share_id)

    with pytest.raises(GroundglassError, match="characters"):
        store.add_turn("web", first["id"], "q", "a", {"images": ["x" * MAX_DETAILS_CHARS]})

    store.delete("web", first["id"])
    with pytest.raises(NotFoundError):
        store.get("web", first["id"])
    with engine.connect() as conn:
        left = conn.execute(select(db.thread_turns.c.thread_id)).scalars().all()
    assert left == [other["id"]]  # the deleted thread's turns went with it


def test_turns_added_at_once_get_distinct_positions(engine: Engine) -> None:
    store = ThreadStore(engine)
    thread = store.create("web", "key_a", "race")
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            store.add_turn("web", thread["id"], f"q{i}", f"a{i}", {})
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    workers = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert [t["position"] for t in store.get("web", thread["id"])["turns"]] == list(range(6))
