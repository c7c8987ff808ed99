"""The job store: async and batch jobs persisted in the server database, claimed line by line, resumable.

A job is a row in ``jobs``; its work is one row per request in ``job_items`` (one for an async
request, one per JSONL line for a batch). Each line moves ``pending -> running -> done|failed``
(or ``cancelled``). How nothing is lost or repeated across restarts and processes:

- **Claiming** is one conditional UPDATE: a line is taken only while it is ``pending`` (or
  ``running`` with an expired lease), and gets a unique claim token and a lease
  (``server.job_lease_s``) that the worker's heartbeat keeps extending while the line runs.
- **Finishing** writes the line's result, its ledger row and (when it was the last line) the job's
  final state and output files in ONE transaction, and only if the line is still held under the same
  claim token. A line whose result is committed is never run again; a line that was running when
  its process died is not committed, and runs again once its lease expires.
- A clean shutdown hands its running lines back (``pending``) at once.
- **Expiry**: a batch has ``server.batch_completion_window_s`` (OpenAI's ``24h``) from its creation.
  Past its ``expires_at`` the worker ends it as ``expired``: every line not yet committed (pending, or
  running: a result that arrives later is discarded, unbilled) goes to the error file with code
  ``batch_expired``; finished lines keep their output. A batch whose server was down past its window is
  expired when a server next runs.

Several server processes can share one database (SQLite or PostgreSQL): they claim lines from the same
table. Whatever ends a job (its last line, a cancel, expiry) first locks the job's row (``SELECT ...
FOR UPDATE``; a no-op on SQLite, whose writers are serialized anyway), so that two lines finishing at
once on PostgreSQL cannot both see the other as still running and leave the job open.

The worker that runs the lines is :mod:`groundglass.server.job_worker`; the batch file format is
:mod:`groundglass.server.batch_file`; files live in :mod:`groundglass.server.files`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from groundglass.server import db
from groundglass.server.batch_file import jsonl, parse_batch_file, result_lines
from groundglass.server.errors import APIError
from groundglass.server.files import FileStore

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.server.auth import Principal
    from groundglass.server.usage import Ledger, UsageEntry

ACTIVE = ("pending", "running")
ASYNC_STATUS = {"done": "COMPLETED", "failed": "FAILED"}
OPEN_BATCH = ("validating", "in_progress")  # states a batch can still expire or be cancelled from


class JobStore:
    def __init__(self, engine: Engine, ledger: Ledger, files: FileStore | None = None) -> None:
        self.engine = engine
        self.ledger = ledger
        self.files = files or FileStore(engine)

    # --- creating jobs -------------------------------------------------------------------------

    def create_async(
        self, who: Principal, body: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        j = db.jobs.c
        with self.engine.begin() as conn:
            if idempotency_key:
                row = conn.execute(
                    select(j.id).where(
                        j.project == who.project, j.kind == "async", j.idempotency_key == idempotency_key
                    )
                ).first()
                if row:
                    return self._job(conn, row.id)
            job_id = db.new_id("async")
            conn.execute(
                insert(db.jobs).values(
                    **db.fit(
                        db.jobs,
                        {
                            "id": job_id,
                            "kind": "async",
                            "key_id": who.key_id,
                            "project": who.project,
                            "model": str(body.get("model", "")),
                            "endpoint": "/chat/completions",
                            "status": "CREATED",
                            "idempotency_key": idempotency_key,
                            "created_at": time.time(),
                        },
                    )
                )
            )
            conn.execute(
                insert(db.job_items).values(
                    job_id=job_id,
                    line_no=0,
                    custom_id=job_id,
                    body=json.dumps(body),
                    status="pending",
                    attempts=0,
                )
            )
            return self._job(conn, job_id)

    def create_batch(
        self,
        who: Principal,
        input_file_id: str,
        endpoint: str,
        metadata: dict[str, str] | None,
        max_lines: int,
        window_s: float = 86_400.0,
    ) -> dict[str, Any]:
        """A batch of the lines of file ``input_file_id``, to finish within ``window_s`` seconds."""
        f = self.files.get_file(who, input_file_id, content=True)
        if f is None:
            raise APIError(404, f"no file {input_file_id!r}", code="file_not_found", param="input_file_id")
        if f["purpose"] != "batch":
            raise APIError(
                400,
                f"file {input_file_id} has purpose {f['purpose']!r}, not 'batch'",
                code="invalid_file",
                param="input_file_id",
            )
        lines = parse_batch_file(f["content"], endpoint, max_lines)
        with self.engine.begin() as conn:
            job_id = db.new_id("batch")
            now = time.time()
            conn.execute(
                insert(db.jobs).values(
                    id=job_id,
                    kind="batch",
                    key_id=who.key_id,
                    project=who.project,
                    model="",
                    endpoint=endpoint,
                    status="in_progress",
                    input_file_id=input_file_id,
                    metadata_json=json.dumps(metadata) if metadata else None,
                    created_at=now,
                    expires_at=now + window_s,
                )
            )
            conn.execute(
                insert(db.job_items),
                [
                    {
                        "job_id": job_id,
                        "line_no": n,
                        "custom_id": cid,
                        "body": json.dumps(body),
                        "status": "pending",
                        "attempts": 0,
                    }
                    for n, (cid, body) in enumerate(lines)
                ],
            )
            return self._job(conn, job_id)

    # --- reading jobs --------------------------------------------------------------------------

    def get_job(self, who: Principal, job_id: str, kind: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            job = self._job(conn, job_id)
        if job is None or job["kind"] != kind or (not who.admin and job["project"] != who.project):
            return None
        return job

    def list_jobs(
        self, who: Principal, kind: str, limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        j = db.jobs.c
        q = select(j.id).where(j.kind == kind).order_by(j.created_at.desc(), j.id.desc())
        if not who.admin:
            q = q.where(j.project == who.project)
        with self.engine.connect() as conn:
            if after:
                anchor = conn.execute(select(j.created_at).where(j.id == after)).first()
                if anchor is not None:
                    q = q.where(
                        or_(
                            j.created_at < anchor.created_at,
                            and_(j.created_at == anchor.created_at, j.id < after),
                        )
                    )
            ids = [r.id for r in conn.execute(q.limit(limit))]
            return [job for i in ids if (job := self._job(conn, i)) is not None]

    def _job(self, conn: Connection, job_id: str) -> dict[str, Any] | None:
        row = conn.execute(select(db.jobs).where(db.jobs.c.id == job_id)).first()
        if row is None:
            return None
        job = dict(row._mapping)
        it = db.job_items.c
        counts = dict(
            conn.execute(select(it.status, func.count()).where(it.job_id == job_id).group_by(it.status)).all()
        )
        tokens = conn.execute(
            select(
                func.coalesce(func.sum(it.prompt_tokens), 0), func.coalesce(func.sum(it.completion_tokens), 0)
            ).where(it.job_id == job_id)
        ).one()
        job["counts"] = {
            "total": sum(counts.values()),
            "completed": counts.get("done", 0),
            "failed": counts.get("failed", 0),
            "cancelled": counts.get("cancelled", 0),
            "expired": counts.get("expired", 0),
            "pending": counts.get("pending", 0),
            "running": counts.get("running", 0),
        }
        job["tokens"] = {"input": int(tokens[0]), "output": int(tokens[1])}
        if job["kind"] == "async":
            item = conn.execute(select(it.response, it.status_code).where(it.job_id == job_id)).first()
            job["response"] = json.loads(item.response) if item and item.response else None
            job["status_code"] = item.status_code if item else None
        return job

    # --- cancelling ----------------------------------------------------------------------------

    def cancel_batch(self, who: Principal, job_id: str) -> dict[str, Any] | None:
        if self.get_job(who, job_id, "batch") is None:
            return None
        j, it = db.jobs.c, db.job_items.c
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(db.jobs)
                .where(j.id == job_id, j.status.in_(OPEN_BATCH))
                .values(status="cancelling", cancelling_at=time.time())
            ).rowcount
            if moved:
                conn.execute(
                    update(db.job_items)
                    .where(it.job_id == job_id, it.status == "pending")
                    .values(status="cancelled")
                )
                self._maybe_finalize(conn, job_id)
            return self._job(conn, job_id)

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
