"""Threads: saved conversations (question, answer and the answer's details, turn by turn) in the server
database, so that a person finds them again from any browser holding a key of the same project.

A thread belongs to a project: every key of the project lists, reads, extends and deletes it (in open
mode everything is the project ``open``). Sharing gives the thread a second, unguessable id; anyone
with a valid key reads it through that id, and nobody can change it through it.

Details are what the API returned with the answer (search results, attribution, related questions,
visual facts, reasoning), kept as JSON so that a reopened thread looks as it did. This module knows
nothing of HTTP: errors are :class:`~groundglass.errors.GroundglassError` values.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, literal, select, update

from groundglass.errors import GroundglassError, NotFoundError
from groundglass.server import db

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

MAX_TURNS = 200  # a thread longer than this no longer fits any model's context anyway
MAX_DETAILS_CHARS = 2_000_000  # one turn's details (thumbnails of its images included)
TITLE_CHARS = 120


def _not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f"no thread {thread_id!r} in this project", "list them with GET /v1/threads")


class ThreadStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, project: str, key_id: str, title: str) -> dict[str, Any]:
        now = time.time()
        row = db.fit(
            db.threads,
            {
                "id": "thr_" + secrets.token_hex(10),
                "project": project,
                "key_id": key_id,
                "title": _title(title),
                "share_id": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(insert(db.threads).values(**row))
        return _thread(row, turns=0)

    def list(self, project: str, limit: int = 50) -> list[dict[str, Any]]:
        """The project's threads, most recently extended first, with their number of turns."""
        t, turns = db.threads, db.thread_turns
        counts = select(turns.c.thread_id, func.count().label("n")).group_by(turns.c.thread_id).subquery()
        q = (
            select(t, func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.thread_id == t.c.id)
            .where(t.c.project == project)
            .order_by(t.c.updated_at.desc(), t.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_thread(dict(r._mapping), turns=int(r.n)) for r in conn.execute(q)]

    def get(self, project: str, thread_id: str) -> dict[str, Any]:
        """One thread with all its turns."""
        with self.engine.connect() as conn:
            row = self._owned(conn, project, thread_id)
            return _with_turns(conn, row)

    def shared(self, share_id: str) -> dict[str, Any]:
        """A shared thread, by its share id, for reading only."""
        with self.engine.connect() as conn:
            row = conn.execute(select(db.threads).where(db.threads.c.share_id == share_id)).first()
            if row is None:
                raise NotFoundError("no shared thread with that link", "ask its owner for a new link")
            out = _with_turns(conn, dict(row._mapping))
        out["read_only"] = True
        return out

    def add_turn(
        self, project: str, thread_id: str, question: str, answer: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        encoded = json.dumps(details, ensure_ascii=False)
        if len(encoded) > MAX_DETAILS_CHARS:
            raise GroundglassError(
                f"the turn's details are {len(encoded)} characters, more than {MAX_DETAILS_CHARS}",
                "send smaller image thumbnails",
                param="details",
            )
        now = time.time()
        turns = db.thread_turns
        with self.engine.begin() as conn:
            self._owned(conn, project, thread_id, lock=True)
            count = conn.execute(select(func.count()).where(turns.c.thread_id == thread_id)).scalar_one()
            if count >= MAX_TURNS:
                raise GroundglassError(
                    f"the thread has {MAX_TURNS} turns already", "start a new thread", code="thread_full"
                )
            row = db.fit(
                turns,
                {
                    "thread_id": thread_id,
                    "question": question,
                    "answer": answer,
                    "details_json": encoded,
                    "created_at": now,
                },
            )
            # The next position is taken in the INSERT itself, so two turns added at once never share
            # one (SQLite runs one writer at a time; PostgreSQL holds the thread's row lock).
            following = select(
                *(literal(v, type_=turns.c[k].type).label(k) for k, v in row.items()),
                func.coalesce(func.max(turns.c.position) + 1, 0).label("position"),
            ).where(turns.c.thread_id == thread_id)
            row["position"] = conn.execute(
                insert(turns).from_select([*row, "position"], following).returning(turns.c.position)
            ).scalar_one()
            conn.execute(update(db.threads).where(db.threads.c.id == thread_id).values(updated_at=now))
        return _turn(row)

    def delete(self, project: str, thread_id: str) -> None:
        with self.engine.begin() as conn:
            self._owned(conn, project, thread_id, lock=True)
            conn.execute(delete(db.thread_turns).where(db.thread_turns.c.thread_id == thread_id))
            conn.execute(delete(db.threads).where(db.threads.c.id == thread_id))

    def share(self, project: str, thread_id: str) -> str:
        """The thread's share id (made on first use; the same one afterwards)."""
        with self.engine.begin() as conn:
            row = self._owned(conn, project, thread_id, lock=True)
            if row["share_id"]:
                return str(row["share_id"])
            share_id = "shr_" + secrets.token_urlsafe(18)
            conn.execute(update(db.threads).where(db.threads.c.id == thread_id).values(share_id=share_id))
            return share_id

    def unshare(self, project: str, thread_id: str) -> None:
        with self.engine.begin() as conn:
            self._owned(conn, project, thread_id, lock=True)
            conn.execute(update(db.threads).where(db.threads.c.id == thread_id).values(share_id=None))

    def _owned(self, conn: Connection, project: str, thread_id: str, *, lock: bool = False) -> dict[str, Any]:
        q = select(db.threads).where(db.threads.c.id == thread_id, db.threads.c.project == project)
        if lock:  # PostgreSQL: turns added at once get distinct positions (SQLite has one writer anyway)
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            raise _not_found(thread_id)
        return dict(row._mapping)


def _title(text: str) -> str:
    line = " ".join(text.split())
    if not line:
        return "Untitled"
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _thread(row: dict[str, Any], *, turns: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "thread",
        "title": row["title"],
        "project": row["project"],
        "shared": bool(row["share_id"]),
        "share_id": row["share_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "turn_count": turns,
    }


def _turn(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": row["position"],
        "question": row["question"],
        "answer": row["answer"],
        "details": json.loads(row["details_json"]),
        "created_at": row["created_at"],
    }


def _with_turns(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    q = (
        select(db.thread_turns)
        .where(db.thread_turns.c.thread_id == row["id"])
        .order_by(db.thread_turns.c.position)
    )
    turns = [_turn(dict(r._mapping)) for r in conn.execute(q)]
    out = _thread(row, turns=len(turns))
    out["turns"] = turns
    return out
