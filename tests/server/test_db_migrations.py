"""The server database's ordered, named migrations: a database of the first release (tables as that
release created them, rows in them) is brought up to the current schema with nothing stored lost, on
SQLite and on PostgreSQL; a new database gets every migration once; a database made before migrations
were recorded (the current tables, no schema_migrations) is taken as it is."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from postgres_server import PostgresServer  # needs psycopg: the dev extras
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
    inspect,
    select,
)

from groundglass.config import load_settings
from groundglass.server import db

# The tables as the first release (commit 03a9bbb) created them: the later columns are missing.
first = MetaData()
Table(
    "api_keys",
    first,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("project", String(200), nullable=False),
    Column("rpm", Integer, nullable=False),
    Column("tpm", Integer, nullable=False),
    Column("admin", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)
Table(
    "usage",
    first,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *(Column(n, String(200), nullable=False) for n in ("request_id", "day", "key_id", "project", "model")),
    Column("endpoint", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("status", Integer, nullable=False),
    *(
        Column(n, Integer, nullable=False)
        for n in ("prompt_tokens", "completion_tokens", "citation_tokens", "reasoning_tokens")
    ),
    Column("num_search_queries", Integer, nullable=False),
    Column("search_context_size", String(10)),
    Column("latency_ms", Float, nullable=False),
    *(
        Column(f"{n}_cost", Float, nullable=False)
        for n in ("input_tokens", "output_tokens", "citation_tokens", "reasoning_tokens", "search_queries")
    ),
    Column("request_cost", Float, nullable=False),
    Column("total_cost", Float, nullable=False),
    Index("ix_usage_day", "day"),
    Index("ix_usage_project", "project"),
)
Table(
    "files",
    first,
    Column("id", String(40), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("filename", String(300), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("content", LargeBinary, nullable=False),
)
Table(
    "jobs",
    first,
    Column("id", String(40), primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("project", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("endpoint", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    *(Column(f"{n}_file_id", String(40)) for n in ("input", "output", "error")),
    Column("metadata_json", Text),
    Column("error_message", Text),
    Column("idempotency_key", String(200)),
    Column("created_at", Float, nullable=False),
    *(
        Column(f"{n}_at", Float)
        for n in ("started", "finalizing", "completed", "failed", "cancelling", "cancelled")
    ),
    Index("ix_jobs_project_kind", "project", "kind"),
)
Table(
    "job_items",
    first,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(40), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("custom_id", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("claimed_by", String(80)),
    Column("lease_until", Float),
    Column("attempts", Integer, nullable=False),
    Column("status_code", Integer),
    Column("response", Text),
    Column("request_id", String(64)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("completed_at", Float),
    UniqueConstraint("job_id", "line_no", name="uq_job_items_line"),
    Index("ix_job_items_status", "status"),
    Index("ix_job_items_job", "job_id", "status"),
)

ALL = [m.__name__ for m in db.MIGRATIONS]
CORE = ["api_keys", "usage", "files", "jobs", "job_items", "threads", "thread_turns", "responses"]

ROWS = {
    "api_keys": {
        "id": "key_1",
        "key_hash": "ab" * 32,
        "prefix": "gg-12345",
        "project": "team",
        "rpm": 60,
        "tpm": 1000,
        "admin": 0,
        "created_at": 1.5,
    },
    "usage": {
        "request_id": "req_1",
        "day": "2026-01-02",
        "key_id": "key_1",
        "project": "team",
        "model": "sonar",
        "endpoint": "/v1/chat/completions",
        "created_at": 2.5,
        "status": 200,
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "citation_tokens": 0,
        "reasoning_tokens": 0,
        "num_search_queries": 1,
        "latency_ms": 850.0,
        **{
            f"{n}_cost": 0.25
            for n in (
                "input_tokens",
                "output_tokens",
                "citation_tokens",
                "reasoning_tokens",
                "search_queries",
            )
        },
        "request_cost": 0.005,
        "total_cost": 0.0075,
    },
    "files": {
        "id": "file_1",
        "project": "team",
        "purpose": "batch",
        "filename": "in.jsonl",
        "bytes": 3,
        "created_at": 3.5,
        "content": b"{}\n",
    },
    "jobs": {
        "id": "batch_1",
        "kind": "batch",
        "key_id": "key_1",
        "project": "team",
        "model": "sonar",
        "endpoint": "/v1/chat/completions",
        "status": "completed",
        "input_file_id": "file_1",
        "created_at": 4.5,
        "completed_at": 5.5,
    },
    "job_items": {
        "job_id": "batch_1",
        "line_no": 1,
        "custom_id": "q1",
        "body": '{"model": "sonar"}',
        "status": "done",
        "attempts": 1,
        "status_code": 200,
        "prompt_tokens": 120,
        "completion_tokens": 30,
    },
}


def columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def stored(engine: Engine) -> dict[str, dict[str, object]]:
    """The one row of each first-release table, the columns that release had."""
    out = {}
    with engine.connect() as conn:
        for name, row in ROWS.items():
            t = first.tables[name]
            found = conn.execute(select(*(t.c[k] for k in row))).mappings().all()
            assert len(found) == 1, name
            out[name] = dict(found[0])
    return out


def first_release_database(url: str) -> None:
    engine = create_engine(url)
    first.create_all(engine)
    with engine.begin() as conn:
        for name, row in ROWS.items():
            conn.execute(insert(first.tables[name]).values(**row))
    engine.dispose()


def migrated(url: str, home: Path) -> Engine:
    """The engine ``groundglass serve`` opens on ``url`` (running the migrations it needs)."""
    db.dispose_engines()
    return db.get_engine(load_settings(None, home=str(home), server__database_url=url))


def check_first_release_upgrade(url: str, home: Path) -> None:
    first_release_database(url)
    engine = migrated(url, home)
    try:
        for name in CORE:  # every table has every column of the current schema
            assert columns(engine, name) == set(db.metadata.tables[name].c.keys()), name
        assert stored(engine) == ROWS  # nothing stored is lost
        with engine.connect() as conn:
            late = [
                conn.execute(select(c)).scalar_one()
                for c in (db.usage.c.training_steps, db.jobs.c.expires_at)
            ]
            ran = conn.execute(select(db.schema_migrations.c.name)).scalars().all()
        assert late == [None, None]  # the rows of before get NULL in the new columns
        assert sorted(ran) == ALL
        assert "ix_jobs_status" in {i["name"] for i in inspect(engine).get_indexes("jobs")}
        with engine.begin() as conn:  # a second start has nothing to do
            assert db.migrate(conn) == []
            conn.execute(
                insert(db.usage).values({**ROWS["usage"], "request_id": "req_2", "training_steps": 40})
            )
    finally:
        db.dispose_engines()


def test_a_first_release_sqlite_database_is_migrated_without_losing_rows(tmp_path: Path) -> None:
    check_first_release_upgrade(f"sqlite:///{tmp_path / 'old.db'}", tmp_path)


def test_a_first_release_postgres_database_is_migrated_without_losing_rows(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    check_first_release_upgrade(postgres.create_database("gg_first_release"), tmp_path)


def test_a_new_database_gets_every_migration_once(tmp_path: Path) -> None:
    engine = migrated(f"sqlite:///{tmp_path / 'new.db'}", tmp_path)
    try:
        for name in CORE:
            assert columns(engine, name) == set(db.metadata.tables[name].c.keys()), name
        with engine.begin() as conn:
            assert sorted(conn.execute(select(db.schema_migrations.c.name)).scalars()) == ALL
            assert db.migrate(conn) == []
    finally:
        db.dispose_engines()


def test_a_database_made_before_migrations_were_recorded(tmp_path: Path) -> None:
    """The previous version created the current tables without recording anything: each migration
    finds what it would add already there, and the rows stay."""
    url = f"sqlite:///{tmp_path / 'unrecorded.db'}"
    engine = create_engine(url)
    db.metadata.create_all(engine, tables=[db.metadata.tables[n] for n in CORE])
    with engine.begin() as conn:
        conn.execute(insert(db.usage).values(**ROWS["usage"], images=4))
    engine.dispose()
    engine = migrated(url, tmp_path)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(db.usage.c.request_id, db.usage.c.images)).all() == [("req_1", 4)]
            assert sorted(conn.execute(select(db.schema_migrations.c.name)).scalars()) == ALL
    finally:
        db.dispose_engines()


def test_migrations_are_named_in_order() -> None:
    """Appended, never reordered: m001, m002, ... each name unique."""
    numbers = [int(name[1:4]) for name in ALL]
    assert numbers == list(range(1, len(ALL) + 1)) and all(n.startswith("m") for n in ALL)


def test_processes_starting_at_once_on_a_new_sqlite_database_migrate_it_once(tmp_path: Path) -> None:
    """Server workers open a new SQLite database at the same moment (SQLite has no advisory lock)."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engines = [create_engine(url, connect_args={"timeout": 30}) for _ in range(4)]
    go = threading.Barrier(len(engines))

    def start(engine: Engine) -> None:
        go.wait()
        db.ensure_schema(engine)

    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(start, engines))
        with engines[0].connect() as conn:
            assert sorted(conn.execute(select(db.schema_migrations.c.name)).scalars()) == ALL
    finally:
        for engine in engines:
            engine.dispose()
