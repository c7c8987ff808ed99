"""The job queue: the lines of async and batch jobs claimed, leased, finished and expired, across
processes and restarts (the rules are in :mod:`groundglass.server.jobs`, whose ``JobStore`` adds
creating, reading and cancelling jobs to this class)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, or_, select, update

from groundglass.server import db
from groundglass.server.batch_file import jsonl, result_lines
from groundglass.server.files import FileStore

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.server.usage import Ledger, UsageEntry

ACTIVE = ("pending", "running")
ASYNC_STATUS = {"done": "COMPLETED", "failed": "FAILED"}
OPEN_BATCH = ("validating", "in_progress")  # states a batch can still expire or be cancelled from


class JobQueue:
    """The worker's side of :class:`~groundglass.server.jobs.JobStore`: claim a line, keep its lease,
    finish it (with its ledger row and, for the last line, the job's end) in one transaction, expire
    batches past their window."""

    def __init__(self, engine: Engine, ledger: Ledger, files: FileStore | None = None) -> None:
        self.engine = engine
        self.ledger = ledger
        self.files = files or FileStore(engine)

    # --- the worker's side ---------------------------------------------------------------------

    def claim(self, token: str, lease_s: float) -> dict[str, Any] | None:
        """Take the oldest runnable line under ``token`` (None when there is none)."""
        it = db.job_items.c
        for _ in range(5):
            now = time.time()
            runnable = or_(it.status == "pending", and_(it.status == "running", it.lease_until < now))
            with self.engine.begin() as conn:
                oldest = select(it.id).where(runnable).order_by(it.id).limit(1).scalar_subquery()
                taken = conn.execute(
                    update(db.job_items)
                    .where(it.id == oldest, runnable)
                    .values(
                        status="running",
                        claimed_by=token,
                        lease_until=now + lease_s,
                        attempts=it.attempts + 1,
                    )
                ).rowcount
                if not taken:
                    has_work = conn.execute(select(it.id).where(runnable).limit(1)).first()
                    if has_work is None:
                        return None
                    continue  # another worker won the race: try the next line
                row = conn.execute(
                    select(db.job_items).where(it.claimed_by == token, it.status == "running")
                ).first()
                if row is None:
                    return None
                item = dict(row._mapping)
            # The job's row in a transaction of its own: a transaction holding a line must never wait for
            # a job's row (a cancel or an expiry locks the job, then its lines: opposite order, deadlock).
            j = db.jobs.c
            with self.engine.begin() as conn:
                conn.execute(
                    update(db.jobs)
                    .where(j.id == item["job_id"], j.started_at.is_(None))
                    .values(started_at=now)
                )
                conn.execute(
                    update(db.jobs)
                    .where(j.id == item["job_id"], j.status == "CREATED")
                    .values(status="IN_PROGRESS")
                )
            return item
        return None

    def expire_due(self, now: float | None = None) -> list[str]:
        """End every open batch past its ``expires_at`` as ``expired``; the ids of those this call ended."""
        j, it = db.jobs.c, db.job_items.c
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            due = [
                r.id
                for r in conn.execute(
                    select(j.id).where(
                        j.kind == "batch",
                        j.status.in_(OPEN_BATCH),
                        or_(  # batches made before expires_at was stored have OpenAI's 24 h
                            j.expires_at <= now, and_(j.expires_at.is_(None), j.created_at <= now - 86_400)
                        ),
                    )
                )
            ]
        ended = []
        for job_id in due:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    update(db.jobs)
                    .where(j.id == job_id, j.status.in_(OPEN_BATCH))
                    .values(status="finalizing", finalizing_at=now)
                ).rowcount
                if not moved:  # another process got there first, or the batch just ended
                    continue
                conn.execute(
                    update(db.job_items)
                    .where(it.job_id == job_id, it.status.in_(ACTIVE))
                    .values(status="expired", claimed_by=None, lease_until=None)
                )
                self._write_results(conn, job_id, {"status": "expired", "expired_at": now})
                ended.append(job_id)
        return ended

    def renew(self, worker_id: str, lease_s: float) -> int:
        it = db.job_items.c
        with self.engine.begin() as conn:
            return conn.execute(
                update(db.job_items)
                .where(it.claimed_by.startswith(worker_id + "/", autoescape=True), it.status == "running")
                .values(lease_until=time.time() + lease_s)
            ).rowcount

    def release(self, worker_id: str) -> int:
        """Hand this worker's running lines back (clean shutdown)."""
        it = db.job_items.c
        with self.engine.begin() as conn:
            return conn.execute(
                update(db.job_items)
                .where(it.claimed_by.startswith(worker_id + "/", autoescape=True), it.status == "running")
                .values(status="pending", claimed_by=None, lease_until=None)
            ).rowcount

    def finish(
        self,
        item: dict[str, Any],
        status_code: int,
        body: dict[str, Any],
        request_id: str,
        entry: UsageEntry | None,
    ) -> bool:
        """Commit a line's result (+ its ledger row, + the job's end when it was the last line) at once.

        False when the line was no longer held under its claim token (its lease ran out and another
        worker took it): then nothing is written.
        """
        it = db.job_items.c
        usage = body.get("usage") or {}
        with self.engine.begin() as conn:
            # the job's row before the line's, as a cancel or an expiry takes them (no lock-order deadlock)
            conn.execute(select(db.jobs.c.id).where(db.jobs.c.id == item["job_id"]).with_for_update())
            done = conn.execute(
                update(db.job_items)
                .where(it.id == item["id"], it.claimed_by == item["claimed_by"], it.status == "running")
                .values(
                    status="done" if status_code < 400 else "failed",
                    status_code=status_code,
                    response=json.dumps(body),
                    request_id=request_id,
                    completed_at=time.time(),
                    lease_until=None,
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                )
            ).rowcount
            if done != 1:
                conn.rollback()
                return False
            if entry is not None:
                self.ledger.record(entry, conn)
            self._maybe_finalize(conn, item["job_id"])
        return True

    def finalize_stragglers(self) -> None:
        """Finish jobs whose lines are all done but whose end was not written (crash at the edge)."""
        j, it = db.jobs.c, db.job_items.c
        with self.engine.connect() as conn:
            open_jobs = [
                r.id
                for r in conn.execute(
                    select(j.id).where(j.status.in_(("in_progress", "cancelling", "CREATED", "IN_PROGRESS")))
                )
            ]
        for job_id in open_jobs:
            with self.engine.begin() as conn:
                active = conn.execute(
                    select(func.count()).where(it.job_id == job_id, it.status.in_(ACTIVE))
                ).scalar_one()
                if not active:
                    self._maybe_finalize(conn, job_id)

    def _maybe_finalize(self, conn: Connection, job_id: str) -> None:
        it, j = db.job_items.c, db.jobs.c
        # Lock the job first, then count: on PostgreSQL the count then sees every line committed by a
        # transaction that held the lock before this one (READ COMMITTED: a fresh snapshot per statement).
        job = conn.execute(select(db.jobs).where(j.id == job_id).with_for_update()).first()
        if job is None:
            return
        active = conn.execute(
            select(func.count()).where(it.job_id == job_id, it.status.in_(ACTIVE))
        ).scalar_one()
        if active:
            return
        now = time.time()
        if job.kind == "async":
            item = conn.execute(select(it.status, it.response).where(it.job_id == job_id)).first()
            if item is None or item.status not in ASYNC_STATUS:
                return
            values: dict[str, Any] = {"status": ASYNC_STATUS[item.status]}
            if item.status == "done":
                values["completed_at"] = now
            else:
                values["failed_at"] = now
                err = (json.loads(item.response or "{}").get("error") or {}).get("message")
                values["error_message"] = err.replace("\x00", "\ufffd") if isinstance(err, str) else None
            conn.execute(
                update(db.jobs)
                .where(j.id == job_id, j.status.in_(("CREATED", "IN_PROGRESS")))
                .values(**values)
            )
            return
        final = "cancelled" if job.status == "cancelling" else "completed"
        claimed = conn.execute(
            update(db.jobs)
            .where(j.id == job_id, j.status.in_(("in_progress", "cancelling")))
            .values(status="finalizing", finalizing_at=now)
        ).rowcount
        if not claimed:
            return
        self._write_results(
            conn, job_id, {"status": final, ("cancelled_at" if final == "cancelled" else "completed_at"): now}
        )

    def _write_results(self, conn: Connection, job_id: str, values: dict[str, Any]) -> None:
        """Write a finalizing batch's output and error files, and its final ``values`` (status...)."""
        it, j = db.job_items.c, db.jobs.c
        job = conn.execute(select(db.jobs.c.project).where(j.id == job_id)).one()
        output, errors = result_lines(
            conn.execute(
                select(it.custom_id, it.status, it.status_code, it.response, it.request_id)
                .where(it.job_id == job_id, it.status.in_(("done", "failed", "expired")))
                .order_by(it.line_no)
            )
        )
        if output:
            values["output_file_id"] = self.files.create_file(
                job.project, "batch_output", f"{job_id}_output.jsonl", jsonl(output), conn
            )["id"]
        if errors:
            values["error_file_id"] = self.files.create_file(
                job.project, "batch_error", f"{job_id}_error.jsonl", jsonl(errors), conn
            )["id"]
        conn.execute(update(db.jobs).where(j.id == job_id).values(**values))
