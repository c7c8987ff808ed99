"""The server's database: keys, the usage ledger, files, jobs, threads and stored responses, in one
SQLAlchemy schema.

SQLite under ``$GROUNDGLASS_HOME/server.db`` by default (WAL mode, so readers never wait for the one
writer); any SQLAlchemy URL in ``server.database_url`` works the same, since everything here is
SQLAlchemy Core with portable types and no dialect-specific SQL. PostgreSQL is tested
(tests/server/test_postgres.py): ``postgresql+psycopg://user:pass@host/db``; ``postgres://`` and
``postgresql://`` URLs, as hosting services print them, are read as psycopg (version 3) URLs.

The schema is built by ordered, named migrations (:data:`MIGRATIONS`, in the manner of Simon
Willison's ``llm``): on first use each one not yet recorded in the ``schema_migrations`` table runs and
is recorded, in one transaction (on PostgreSQL under an advisory lock, so that several processes
starting at once do not race). A change to the tables above is a new migration at the end of the
list, never an edit of an old one; a database made by any earlier version is brought up to date
without losing a row (tests/server/test_db_migrations.py). Each migration only adds what is missing,
so databases made before migrations were recorded are brought up to date the same way.

Free text that clients send (model names, filenames, error messages) passes through :func:`fit`
before it is written: PostgreSQL, unlike SQLite, enforces ``VARCHAR(n)`` lengths and refuses NUL
characters, and the ledger must never fail to record a request because of what the request contained.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Connection,
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
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from groundglass.errors import GroundglassError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.config import Settings

log = get_logger(__name__)
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
    # DreamBooth: a fine-tuning job's optimizer steps and the device time it held; images drawn
    Column("training_steps", Integer, nullable=True),
    Column("device_seconds", Float, nullable=True),
    Column("images", Integer, nullable=True),
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
    # batch: validating|in_progress|finalizing|completed|failed|expired|cancelling|cancelled
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
    Column("expires_at", Float, nullable=True),  # batch: created_at + server.batch_completion_window_s
    Column("expired_at", Float, nullable=True),
    Index("ix_jobs_project_kind", "project", "kind"),
    Index("ix_jobs_status", "status"),
)

job_items = Table(
    "job_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(40), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("custom_id", String(200), nullable=False),
    Column("body", Text, nullable=False),  # the chat request, JSON
    Column("status", String(12), nullable=False),  # pending|running|done|failed|cancelled|expired
    Column("claimed_by", String(200), nullable=True),
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

# Conversations of the web page (or any client): one row per thread, one per question and answer in it.
# A thread belongs to a project; share_id, when set, lets any key read it (never change it).
threads = Table(
    "threads",
    metadata,
    Column("id", String(40), primary_key=True),  # "thr_..."
    Column("project", String(200), nullable=False),
    Column("key_id", String(40), nullable=False),  # the key that started it
    Column("title", String(300), nullable=False),
    Column("share_id", String(40), nullable=True, unique=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_threads_project_updated", "project", "updated_at"),
)

thread_turns = Table(
    "thread_turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("thread_id", String(40), nullable=False),
    Column("position", Integer, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("details_json", Text, nullable=False),  # sources, attribution, ... as the API returned them
    Column("created_at", Float, nullable=False),
    UniqueConstraint("thread_id", "position", name="uq_thread_turns_position"),
)

# Answers of the Responses API (/v1/responses), kept so that a later request can continue one with
# previous_response_id: the conversation through this answer, the sources it had, the response object.
responses = Table(
    "responses",
    metadata,
    Column("id", String(40), primary_key=True),  # "resp_..."
    Column("project", String(200), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("model", String(200), nullable=False),
    Column("previous_response_id", String(40), nullable=True),
    Column("stored", Integer, nullable=False, default=1),  # store=false: continuable, not retrievable
    Column("messages_json", Text, nullable=False),  # [{"role", "content"}], instructions left out
    Column("sources_json", Text, nullable=False),  # the answer's sources, reused by a follow-up
    Column("body_json", Text, nullable=False),  # the response object as returned
    Column("created_at", Float, nullable=False),
    Index("ix_responses_project", "project", "created_at"),
)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    url = settings.server.database_url
    if not url:
        return f"sqlite:///{settings.home / 'server.db'}"
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql"):  # the driver groundglass installs: psycopg 3
        return f"postgresql+psycopg://{rest}"
    return url


def new_id(prefix: str) -> str:
    """A fresh row id such as ``file_3f2a...``: the prefix names the kind, as OpenAI's ids do."""
    return f"{prefix}_{secrets.token_hex(12)}"


def fit(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` made storable in ``table`` on every database: NUL characters (which PostgreSQL text
    refuses) become U+FFFD, and strings are cut to their ``VARCHAR(n)`` (which PostgreSQL enforces)."""
    out = dict(values)
    for name, value in values.items():
        if not isinstance(value, str) or name not in table.c:
            continue
        value = value.replace("\x00", "\ufffd")
        length = getattr(table.c[name].type, "length", None)
        out[name] = value[:length] if length else value
    return out


# --- migrations ------------------------------------------------------------------------------------

# Which migrations a database has had (kept out of ``metadata``: it describes the schema's history).
schema_migrations = Table(
    "schema_migrations",
    MetaData(),
    Column("name", String(100), primary_key=True),
    Column("applied_at", Float, nullable=False),
)


def create_tables(conn: Connection, *tables: Table) -> None:
    """Create those of ``tables`` the database lacks (with their indexes)."""
    metadata.create_all(conn, tables=list(tables), checkfirst=True)


def add_columns(conn: Connection, table: Table, *names: str) -> None:
    """Add those of ``table``'s columns ``names`` the database lacks (nullable ones: rows already
    stored get NULL), and create the table's indexes that are missing."""
    have = {c["name"] for c in inspect(conn).get_columns(table.name)}
    quote = conn.dialect.identifier_preparer.quote
    for name in names:
        column = table.c[name]
        if name in have:
            continue
        if not column.nullable:
            raise ValueError(f"{table.name}.{name}: a column added to stored rows must be nullable")
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(name)} {kind}"))
    for index in table.indexes:
        index.create(conn, checkfirst=True)


def m001_keys_usage_files_jobs(conn: Connection) -> None:
    """The first release: API keys, the usage ledger, files, async and batch jobs."""
    create_tables(conn, api_keys, usage, files, jobs, job_items)


def m002_batch_expiry(conn: Connection) -> None:
    """Batches expire after their completion window (and jobs are found by status)."""
    add_columns(conn, jobs, "expires_at", "expired_at")


def m003_threads(conn: Connection) -> None:
    """Conversations of the web page."""
    create_tables(conn, threads, thread_turns)


def m004_responses(conn: Connection) -> None:
    """Responses API answers, kept for previous_response_id."""
    create_tables(conn, responses)


def m005_usage_dreambooth(conn: Connection) -> None:
    """The ledger's DreamBooth columns: training steps, device-seconds, images drawn."""
    add_columns(conn, usage, "training_steps", "device_seconds", "images")


# In the order they run. Append; never edit, rename or remove one that has shipped.
MIGRATIONS: list[Callable[[Connection], None]] = [
    m001_keys_usage_files_jobs,
    m002_batch_expiry,
    m003_threads,
    m004_responses,
    m005_usage_dreambooth,
]


def migrate(conn: Connection) -> list[str]:
    """Run the migrations this database has not had, in order, recording each; their names."""
    schema_migrations.create(conn, checkfirst=True)
    done = set(conn.execute(select(schema_migrations.c.name)).scalars())
    ran = []
    for step in MIGRATIONS:
        if step.__name__ in done:
            continue
        step(conn)
        conn.execute(insert(schema_migrations).values(name=step.__name__, applied_at=time.time()))
        ran.append(step.__name__)
    if ran:
        log.info("database_migrated", migrations=ran)
    return ran


def ensure_schema(engine: Engine, attempts: int = 10) -> None:
    """Bring the database at ``engine`` to the current schema (:func:`migrate`), in one transaction."""
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # one process at a time migrates (held to commit)
                    conn.execute(text("SELECT pg_advisory_xact_lock(7171717171)"))
                migrate(conn)
            return
        except (OperationalError, IntegrityError):
            # SQLite has no advisory lock: two processes that start at once can both find a migration
            # to run, and the second to write fails; by then the first has recorded it, so read again.
            # Under load several processes can lose in turn; a short random wait lets the winner commit.
            if engine.dialect.name == "postgresql" or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.05, 0.25))


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
                # as many connections as the SQLite pool: the API's thread pool and the job worker share it
                engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)
            except Exception as exc:  # bad URL or a driver that is not installed
                raise GroundglassError(
                    f"cannot use server.database_url {_shown(url)!r}: {exc}",
                    "fix the URL, or install its driver (PostgreSQL: pip install 'psycopg[binary]')",
                ) from exc
        try:
            ensure_schema(engine)
        except Exception as exc:
            engine.dispose()
            raise GroundglassError(
                f"cannot open the server database {_shown(url)}: {_first_line(exc)}",
                "check server.database_url and that the database is reachable",
                status=503,
                code="database_unavailable",
            ) from exc
        _engines[url] = engine
        return engine


def _shown(url: str) -> str:
    """The URL with its password hidden (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _first_line(exc: Exception) -> str:
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]


def dispose_engines() -> None:
    """Close pooled connections (tests, and the end of a server's life)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
