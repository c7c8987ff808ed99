"""The server database on a real PostgreSQL (``server.database_url``): keys, ledger, usage report and a
batch that survives a killed server, the job store's locking under concurrent finishes, batch expiry,
an outage of the database (503, then recovery), and client text PostgreSQL would refuse.

The test starts its own throwaway PostgreSQL (tests/server/postgres_server.py: Debian's ``postgresql``
package, which .ci/run installs) and reads it back with the driver alone, not through groundglass.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from postgres_server import PostgresServer  # needs psycopg: the dev extras
from server_helpers import Server, cli, create_key, free_port, make_home
from test_jobs import QUESTIONS, batch_file, jsonl, wait_for


def utc_day() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


@dataclass
class PgApi:
    pg: PostgresServer
    db: str
    server: Server
    key: str


@pytest.fixture(scope="module")
def pg_api(
    postgres: PostgresServer, index_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PgApi]:
    """A keyed `groundglass serve` whose keys, ledger, files and jobs live in PostgreSQL database gg_api."""
    url = postgres.create_database("gg_api")
    # 3 job lines at once: lines of one batch finish concurrently, in separate PostgreSQL transactions
    home = make_home(index_home, tmp_path_factory.mktemp("pg-home"), database_url=url, job_concurrency=3)
    key = create_key(home, "pg-team", rpm=100_000, tpm=100_000_000)
    api = PgApi(postgres, "gg_api", Server(home, free_port()).start(), key)
    try:
        yield api
    finally:
        api.server.stop()  # the one running now: a test restarts it


def test_keys_ledger_usage_and_a_killed_batch_live_in_postgres(pg_api: PgApi) -> None:
    pg, home, key = pg_api.pg, pg_api.server.home, pg_api.key
    started = utc_day()  # the ledger's day is the request's UTC day; a run may cross midnight
    assert not (home / "server.db").exists()  # nothing went to the SQLite default
    [(project, revoked)] = pg.query(pg_api.db, "SELECT project, revoked_at FROM api_keys")
    assert (project, revoked) == ("pg-team", None)

    client = openai.OpenAI(base_url=pg_api.server.base_url + "/v1", api_key=key, max_retries=0, timeout=120)
    answer = client.chat.completions.create(
        model="sonar",
        max_tokens=8,
        messages=[{"role": "user", "content": "When was the Eiffel Tower completed?"}],
    )
    assert answer.choices[0].message.content and answer.usage.completion_tokens > 0
    # a model name PostgreSQL's VARCHAR(200) and text type would refuse: a clean 404, and still billed
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="x\u0000" + "m" * 300, messages=[{"role": "user", "content": "hi"}]
        )

    # a batch with a line PostgreSQL would refuse to store as is; the server is killed half-way
    bad_line = {
        "custom_id": "odd",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "n\u0000" * 150, "messages": [{"role": "user", "content": "hi"}]},
    }
    headers = {"Authorization": f"Bearer {key}"}
    queued = httpx.post(
        pg_api.server.base_url + "/async/chat/completions",
        headers=headers,
        json={
            "request": {
                "model": "sonar",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "Who created Python?"}],
            },
            "idempotency_key": "pg-1",
        },
    ).json()
    content = batch_file(QUESTIONS[:3]) + (json.dumps(bad_line) + "\n").encode()
    f = client.files.create(file=("pg.jsonl", content), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    wait_for(lambda: client.batches.retrieve(batch.id), lambda b: b.request_counts.completed >= 1, every=0.1)
    pg_api.server.kill()  # SIGKILL mid-batch
    pg_api.server = Server(home, pg_api.server.port)  # (set first: the fixture stops whichever runs)
    pg_api.server.start()
    final = wait_for(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    assert (final.request_counts.completed, final.request_counts.failed) == (3, 1)
    out = jsonl(client.files.content(final.output_file_id).content)
    assert sorted(x["custom_id"] for x in out) == ["q0", "q1", "q2"]
    [error] = jsonl(client.files.content(final.error_file_id).content)
    assert error["custom_id"] == "odd" and error["error"]["code"] == "model_not_found"
    async_url = f"{pg_api.server.base_url}/async/chat/completions/{queued['id']}"
    done = wait_for(
        lambda: httpx.get(async_url, headers=headers).json(), lambda j: j["status"] == "COMPLETED"
    )
    assert done["response"]["choices"][0]["message"]["content"]

    # the ledger, read from PostgreSQL with the driver alone: one row per request, none twice
    rows = pg.query(
        pg_api.db,
        "SELECT request_id, status, model, day, total_cost FROM usage WHERE project = 'pg-team' ORDER BY id",
    )
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == 3 + 4  # a chat, the 404, the async one, 4 batch lines
    assert {x["response"]["request_id"] for x in [*out, error]} | {done["response"]["id"]} <= set(ids)
    assert Counter(r[1] for r in rows) == {200: 5, 404: 2}
    days = {r[3] for r in rows}
    assert days <= {started, utc_day()}
    long_names = [r[2] for r in rows if r[2].startswith(("x", "n"))]
    assert len(long_names) == 2 and all(len(m) == 200 and "\u0000" not in m for m in long_names)
    [(lines, done)] = pg.query(
        pg_api.db, f"SELECT count(*), sum(attempts) FROM job_items WHERE job_id = '{batch.id}'"
    )
    assert lines == 4 and done <= 4 + 3  # at most the lines in flight at the kill ran twice

    # the usage report (HTTP and CLI) aggregates the same rows by day and model on PostgreSQL
    report = httpx.get(
        pg_api.server.base_url + "/v1/usage", params={"group_by": "day,model"}, headers=headers
    ).json()["data"]
    assert sum(r["requests"] for r in report) == len(rows) and {r["day"] for r in report} == days
    sonar = [r for r in report if r["model"] == "sonar"]  # one row per day
    assert sum(r["requests"] for r in sonar) == 5 and sum(r["errors"] for r in sonar) == 0
    assert sum(r["total_cost"] for r in sonar) == pytest.approx(
        sum(r[4] for r in rows if r[2] == "sonar"), abs=1e-6
    )
    by_key = json.loads(cli(home, "usage", "report", "--by", "project,day", "--json").stdout)
    per_day = sorted(
        ("pg-team", day, sum(r[3] == day for r in rows), sum(r[3] == day and r[1] != 200 for r in rows))
        for day in days
    )
    assert [(r["project"], r["day"], r["requests"], r["errors"]) for r in by_key] == per_day
    assert sum(n for *_, n, _ in per_day) == 7 and sum(e for *_, e in per_day) == 2

    # keys: revoked in PostgreSQL, refused by the running server at once
    [(key_id,)] = pg.query(pg_api.db, "SELECT id FROM api_keys")
    cli(home, "keys", "revoke", key_id)
    assert pg.query(pg_api.db, "SELECT revoked_at IS NOT NULL FROM api_keys") == [(True,)]
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_database_outage_is_a_503_and_the_server_recovers(pg_api: PgApi) -> None:
    base = pg_api.server.base_url
    unknown = {"Authorization": "Bearer gg-not-a-key"}  # looking a key up needs the database
    assert httpx.get(base + "/v1/models", headers=unknown).status_code == 401
    pg_api.pg.pause()
    try:
        r = httpx.get(base + "/v1/models", headers=unknown, timeout=60)
        assert r.status_code == 503, r.text  # not a 401: the key is not known to be wrong, nor a 500
        assert r.json()["error"]["code"] == "database_unavailable" and r.headers["retry-after"]
        health = httpx.get(base + "/healthz", timeout=60)
        assert health.status_code == 503 and health.json()["checks"]["database"] is False
    finally:
        pg_api.pg.resume()
    assert httpx.get(base + "/v1/models", headers=unknown).status_code == 401  # stale connections replaced
    assert httpx.get(base + "/healthz").json()["checks"]["database"] is True


# --- the job store on PostgreSQL, without a server ---------------------------------------------------


def _store(postgres: PostgresServer, name: str, tmp_path: Path, create: bool = True):  # type: ignore[no-untyped-def]
    from groundglass.config import load_settings
    from groundglass.server import db
    from groundglass.server.jobs import JobStore
    from groundglass.server.usage import Ledger

    url = postgres.create_database(name) if create else postgres.url(name)
    settings = load_settings(None, home=str(tmp_path), server__database_url=url)
    engine = db.get_engine(settings)
    return JobStore(engine, Ledger(engine))


def test_two_lines_finishing_at_once_end_the_batch(postgres: PostgresServer, tmp_path: Path) -> None:
    """Worker A commits its line while worker B is finishing the last one: on PostgreSQL, without a lock
    on the job, each would see the other's line still running and the batch would never end."""
    from sqlalchemy import update

    from groundglass.server import db
    from groundglass.server.auth import Principal

    store = _store(postgres, "gg_race", tmp_path)
    who = Principal("key_1", "race", 10, 10)
    f = store.files.create_file("race", "batch", "two.jsonl", batch_file(QUESTIONS[:2]))
    batch = store.create_batch(who, f["id"], "/v1/chat/completions", None, 10)
    a, b = store.claim("a/0", 60), store.claim("b/0", 60)
    assert a and b
    body = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

    a_holds, a_go = threading.Event(), threading.Event()

    def finish_a() -> None:  # store.finish, held open between its writes and its commit
        with store.engine.begin() as conn:
            conn.execute(
                update(db.job_items)
                .where(db.job_items.c.id == a["id"])
                .values(status="done", status_code=200, response=json.dumps(body), request_id="ra")
            )
            store._maybe_finalize(conn, batch["id"])
            a_holds.set()
            a_go.wait(30)

    ta = threading.Thread(target=finish_a)
    tb = threading.Thread(target=store.finish, args=(b, 200, body, "rb", None))
    ta.start()
    try:
        assert a_holds.wait(30)
        tb.start()
        tb.join(1.0)
        b_waited = tb.is_alive()  # B waits for A's lock on the job instead of deciding on a stale view
    finally:
        a_go.set()
        ta.join(30)
        if tb.ident is not None:
            tb.join(30)
    job = store.get_job(who, batch["id"], "batch")
    assert job["status"] == "completed" and job["counts"]["completed"] == 2  # not left in_progress
    assert b_waited
    assert len(jsonl(store.files.get_file(who, job["output_file_id"], content=True)["content"])) == 2


def test_batch_expiry_on_postgres(postgres: PostgresServer, tmp_path: Path) -> None:
    from groundglass.server.auth import Principal

    store = _store(postgres, "gg_expiry", tmp_path)
    who = Principal("key_1", "late", 10, 10)
    f = store.files.create_file("late", "batch", "three.jsonl", batch_file(QUESTIONS[:3]))
    batch = store.create_batch(who, f["id"], "/v1/chat/completions", None, 10, window_s=5)
    assert batch["expires_at"] == pytest.approx(batch["created_at"] + 5)
    first = store.claim("w/0", 60)
    assert store.finish(first, 200, {"choices": [], "usage": {}}, "r0", None)
    running = store.claim("w/1", 60)  # still running when the window closes
    assert store.expire_due(now=time.time()) == []  # not due yet
    assert store.expire_due(now=batch["expires_at"] + 1) == [batch["id"]]
    assert store.expire_due(now=batch["expires_at"] + 2) == []  # ended once
    assert not store.finish(
        running, 200, {"choices": [], "usage": {}}, "r1", None
    )  # a late result is dropped
    job = store.get_job(who, batch["id"], "batch")
    assert job["status"] == "expired" and job["expired_at"] and job["counts"]["expired"] == 2
    errors = jsonl(store.files.get_file(who, job["error_file_id"], content=True)["content"])
    assert [(e["custom_id"], e["response"], e["error"]["code"]) for e in errors] == [
        ("q1", None, "batch_expired"),
        ("q2", None, "batch_expired"),
    ]
    output = store.files.get_file(who, job["output_file_id"], content=True)
    assert [x["custom_id"] for x in jsonl(output["content"])] == ["q0"]


def test_a_postgres_database_from_before_expiry_gains_its_columns(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    from groundglass.server import db

    _store(postgres, "gg_migrate", tmp_path)  # the jobs table, as the previous version created it:
    postgres.execute("gg_migrate", "ALTER TABLE jobs DROP COLUMN expires_at, DROP COLUMN expired_at")
    postgres.execute("gg_migrate", "DROP TABLE schema_migrations")  # which recorded no migrations
    db.dispose_engines()
    _store(postgres, "gg_migrate", tmp_path, create=False)
    names = postgres.query(
        "gg_migrate", "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'"
    )
    assert {"expires_at", "expired_at"} <= {n for (n,) in names}


def test_postgres_urls_are_read_as_psycopg() -> None:
    from groundglass.config import load_settings
    from groundglass.server.db import database_url

    for given in ("postgres://u:p@h:5/d", "postgresql://u:p@h:5/d", "postgresql+psycopg://u:p@h:5/d"):
        assert (
            database_url(load_settings(None, server__database_url=given)) == "postgresql+psycopg://u:p@h:5/d"
        )
