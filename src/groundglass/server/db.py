"""The server's database: keys, the usage ledger, files and jobs, in one SQLAlchemy schema.

SQLite under ``$GROUNDGLASS_HOME/server.db`` by default (WAL mode, so readers never wait for the one
writer); any SQLAlchemy URL in ``server.database_url`` (PostgreSQL:
``postgresql+psycopg://user:pass@host/db``) works the same, since everything here is SQLAlchemy Core
with portable types. Tables are created on first use.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

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
    event,
)

from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.config import Settings

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),  # public id, e.g. "key_3f2a..."; never the secret
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the secret key
    Column("prefix", String(16), nullable=False),  # first characters of the key, for `keys list`
    Column("project", String(200), nullable=False),
    Column("rpm", Integer, nullable=False),
    Column("tpm", Integer, nullable=False),
    Column("admin", Integer, nullable=False, default=0),  # may read usage of every project
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

usage = Table(
    "usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("day", String(10), nullable=False),  # UTC YYYY-MM-DD, stored so grouping is portable
    Column("key_id", String(40), nullable=False),
    Column("project", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("endpoint", String(100), nullable=False),
    Column("status", Integer, nullable=False),  # HTTP status of the request (499: client went away)
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("citation_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("num_search_queries", Integer, nullable=False, default=0),
    Column("search_context_size", String(10), nullable=True),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("input_tokens_cost", Float, nullable=False, default=0.0),
    Column("output_tokens_cost", Float, nullable=False, default=0.0),
    Column("citation_tokens_cost", Float, nullable=False, default=0.0),
    Column("reasoning_tokens_cost", Float, nullable=False, default=0.0),
    Column("search_queries_cost", Float, nullable=False, default=0.0),
    Column("request_cost", Float, nullable=False, default=0.0),
    Column("total_cost", Float, nullable=False, default=0.0),
    Index("ix_usage_day", "day"),
    Index("ix_usage_project", "project"),
)

files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project", String(200), nullable=False),
    Column("purpose", String(40), nullable=False),  # "batch" (uploads), "batch_output", "batch_error"
    Column("filename", String(300), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(10), nullable=False),  # "async" | "batch"
    Column("key_id", String(40), nullable=False),
    Column("project", String(200), nullable=False),
    Column("model", String(200), nullable=False, default=""),
    Column("endpoint", String(100), nullable=False, default="/v1/chat/completions"),
    # batch: validating|in_progress|finalizing|completed|failed|cancelling|cancelled
    # async: CREATED|IN_PROGRESS|COMPLETED|FAILED
    Column("status", String(20), nullable=False),
    Column("input_file_id", String(40), nullable=True),
    Column("output_file_id", String(40), nullable=True),
    Column("error_file_id", String(40), nullable=True),
    Column("metadata_json", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finalizing_at", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    Column("failed_at", Float, nullable=True),
    Column("cancelling_at", Float, nullable=True),
    Column("cancelled_at", Float, nullable=True),
    Index("ix_jobs_project_kind", "project", "kind"),
)

job_items = Table(
    "job_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(40), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("custom_id", String(200), nullable=False),
    Column("body", Text, nullable=False),  # the chat request, JSON
    Column("status", String(12), nullable=False),  # pending|running|done|failed|cancelled
    Column("claimed_by", String(80), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("status_code", Integer, nullable=True),
    Column("response", Text, nullable=True),  # response body JSON (success or error body)
    Column("request_id", String(64), nullable=True),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("completed_at", Float, nullable=True),
    UniqueConstraint("job_id", "line_no", name="uq_job_items_line"),
    Index("ix_job_items_status", "status"),
    Index("ix_job_items_job", "job_id", "status"),
)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    return settings.server.database_url or f"sqlite:///{settings.home / 'server.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def get_engine(settings: Settings) -> Engine:
    """The SQLAlchemy engine for the server database (created, with its tables, once per URL)."""
    url = database_url(settings)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        if url.startswith("sqlite:///"):
            settings.home.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=8, max_overflow=16
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            try:
                engine = create_engine(url, pool_pre_ping=True)
            except Exception as exc:  # bad URL or a driver that is not installed
                raise GroundglassError(
                    f"cannot use server.database_url {url!r}: {exc}",
                    "fix the URL, or install its driver (e.g. pip install psycopg)",
                ) from exc
        try:
            metadata.create_all(engine)
        except Exception as exc:
            raise GroundglassError(
                f"cannot open the server database {url}: {exc}",
                "check server.database_url and that the database is reachable",
                status=503,
                code="database_unavailable",
            ) from exc
        _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close pooled connections (tests, and the end of a server's life)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
