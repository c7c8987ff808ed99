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

The queue side of the store (claim, lease, finish, expire) is :mod:`groundglass.server.job_queue`;
the worker that runs the lines is :mod:`groundglass.server.job_worker`; the batch file format is
:mod:`groundglass.server.batch_file`; files live in :mod:`groundglass.server.files`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from groundglass.server import db
from groundglass.server.batch_file import parse_batch_file
from groundglass.server.errors import APIError
from groundglass.server.job_queue import OPEN_BATCH, JobQueue

if TYPE_CHECKING:
    from groundglass.server.auth import Principal


class JobStore(JobQueue):
    """Jobs as the API sees them: created, read, listed, cancelled; the worker's side (claim, lease,
    finish, expire) is :class:`~groundglass.server.job_queue.JobQueue`."""

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
