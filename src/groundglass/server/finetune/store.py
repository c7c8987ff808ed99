"""Fine-tuning jobs in the server database: create, read, cancel, the queue, events.

How a job is never lost and never runs twice:

- **Claiming** takes a device first (one conditional UPDATE on its ``finetune_devices`` row: free,
  or its holder's lease expired), then the oldest job that is ``queued`` or ``running`` with an
  expired lease (its process died), again by one conditional UPDATE that gives it a claim token and
  a lease. A worker's heartbeat extends both leases while the job runs.
- Every write a running job makes (events, progress, its end) is made only under its claim token; a
  worker that lost its claim stops.
- A job whose process died resumes from its run folder's ``last.ckpt`` once its lease expires; the
  events it recorded past that checkpoint's step are deleted when the resumed run starts (those
  steps run again), so the loss curve holds each step once.
- The job's end, its last event and its ledger row are one transaction.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from groundglass.server import db
from groundglass.server.finetune import tables
from groundglass.server.finetune.tables import devices, events, jobs

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.server.auth import Principal

TERMINAL = ("succeeded", "failed", "cancelled")


def new_job_id() -> str:
    return f"ftjob-{secrets.token_hex(12)}"


def fine_tuned_model_id(base: str, project: str, suffix: str | None, job_id: str) -> str:
    """OpenAI's shape: ``ft:<base>:<project>:<suffix>:<id>`` (the id without its ``ftjob-`` prefix)."""
    return f"ft:{base}:{project}:{suffix or ''}:{job_id.removeprefix('ftjob-')}"


def _row(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["hyperparameters"] = stored_hyperparameters(json.loads(out.pop("hyperparameters_json") or "{}"))
    out["metadata"] = json.loads(out.pop("metadata_json") or "null")
    out["error"] = json.loads(out.pop("error_json") or "null")
    return out


def stored_hyperparameters(hp: dict[str, Any]) -> dict[str, Any]:
    """A job's stored hyperparameters under today's names: jobs stored before the optimizer-step count
    was renamed hold it as ``steps``; they still run (and resume), and clients see ``train_steps``."""
    if "steps" in hp:
        hp = dict(hp)
        hp.setdefault("train_steps", hp.pop("steps"))
    return hp


def event_public(row: dict[str, Any]) -> dict[str, Any]:
    """An event as OpenAI's ``fine_tuning.job.event`` (with our ``kind`` and ``step`` beside it)."""
    return {
        "id": f"ftevent-{row['id']}",
        "object": "fine_tuning.job.event",
        "created_at": int(row["created_at"]),
        "level": row["level"],
        "message": row["message"],
        "type": row["type"],
        "data": json.loads(row["data_json"]) if row["data_json"] else {},
        "kind": row["kind"],
        "step": row["step"],
    }


def event_seq(event_id: str | None) -> int | None:
    if not event_id:
        return None
    try:
        return int(event_id.removeprefix("ftevent-"))
    except ValueError:
        return None


class FineTuneStore:
    def __init__(self, engine: Engine, lease_s: float) -> None:
        self.engine = engine
        self.lease_s = lease_s
        try:
            tables.create(engine)
        except Exception:  # another process created them at the same moment (PostgreSQL)
            time.sleep(0.5)
            tables.create(engine)

    # --- jobs as clients see them ---------------------------------------------------------------

    def create_job(
        self,
        who: Principal,
        *,
        model: str,
        training_file: str,
        suffix: str | None,
        hyperparameters: dict[str, Any],
        metadata: dict[str, str] | None,
    ) -> dict[str, Any]:
        job_id = new_job_id()
        now = time.time()
        row = db.fit(
            jobs,
            {
                "id": job_id,
                "key_id": who.key_id,
                "project": who.project,
                "model": model,
                "training_file": training_file,
                "suffix": suffix,
                "hyperparameters_json": json.dumps(hyperparameters),
                "metadata_json": json.dumps(metadata) if metadata else None,
                "status": "queued",
                "cancel_requested": 0,
                "attempts": 0,
                "trained_steps": 0,
                "device_seconds": 0.0,
                "created_at": now,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(insert(jobs).values(**row))
            self._event(
                conn, job_id, "queued", f"Job queued: {hyperparameters.get('train_steps')} steps on {model}"
            )
        job = self.get_job(None, job_id)
        assert job is not None
        return job

    def get_job(self, who: Principal | None, job_id: str) -> dict[str, Any] | None:
        q = select(jobs).where(jobs.c.id == job_id)
        if who is not None and not who.admin:
            q = q.where(jobs.c.project == who.project)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _row(row) if row else None

    def list_jobs(self, who: Principal, *, limit: int, after: str | None) -> list[dict[str, Any]]:
        q = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        if not who.admin:
            q = q.where(jobs.c.project == who.project)
        with self.engine.connect() as conn:
            if after:
                anchor = conn.execute(select(jobs.c.created_at).where(jobs.c.id == after)).scalar()
                if anchor is not None:
                    q = q.where(
                        or_(jobs.c.created_at < anchor, (jobs.c.created_at == anchor) & (jobs.c.id < after))
                    )
            return [_row(r) for r in conn.execute(q.limit(limit))]

    def request_cancel(self, who: Principal, job_id: str) -> dict[str, Any] | None:
        """A queued job is cancelled at once; a running one is flagged and stops at its next step."""
        with self.engine.begin() as conn:
            q = select(jobs.c.status, jobs.c.project).where(jobs.c.id == job_id)
            row = conn.execute(q).first()
            if row is None or (not who.admin and row.project != who.project):
                return None
            if row.status == "queued":
                done = conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status == "queued")
                    .values(status="cancelled", cancel_requested=1, finished_at=time.time())
                )
                if done.rowcount:
                    self._event(conn, job_id, "cancelled", "Job cancelled before it started")
            elif row.status == "running":
                conn.execute(update(jobs).where(jobs.c.id == job_id).values(cancel_requested=1))
                self._event(conn, job_id, "cancelling", "Cancel requested: stopping at the next step")
        return self.get_job(who, job_id)

    def succeeded_models(self, who: Principal) -> list[dict[str, Any]]:
        q = select(jobs).where(jobs.c.status == "succeeded", jobs.c.fine_tuned_model.is_not(None))
        if not who.admin:
            q = q.where(jobs.c.project == who.project)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q.order_by(jobs.c.finished_at))]

    def job_of_model(self, who: Principal, model_id: str) -> dict[str, Any] | None:
        q = select(jobs).where(jobs.c.fine_tuned_model == model_id, jobs.c.status == "succeeded")
        if not who.admin:
            q = q.where(jobs.c.project == who.project)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _row(row) if row else None

    # --- events -----------------------------------------------------------------------------------

    def _event(
        self,
        conn: Connection,
        job_id: str,
        kind: str,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        step: int | None = None,
        level: str = "info",
        type: str = "message",
        created_at: float | None = None,
    ) -> None:
        conn.execute(
            insert(events).values(
                **db.fit(
                    events,
                    {
                        "job_id": job_id,
                        "created_at": created_at or time.time(),
                        "level": level,
                        "type": type,
                        "kind": kind,
                        "step": step,
                        "message": message,
                        "data_json": json.dumps(data) if data is not None else None,
                    },
                )
            )
        )

    def list_events(
        self,
        job_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
        ascending: bool = False,
    ) -> list[dict[str, Any]]:
        e = events.c
        q = select(events).where(e.job_id == job_id)
        if after_seq is not None:
            q = q.where(e.id > after_seq)
        if before_seq is not None:
            q = q.where(e.id < before_seq)
        q = q.order_by(e.id.asc() if ascending else e.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def loss_curve(self, job_id: str) -> dict[int, float]:
        """Step -> training loss, as recorded (each step once)."""
        curve: dict[int, float] = {}
        for row in self.list_events(job_id, limit=1_000_000, ascending=True):
            if row["kind"] == "step" and row["data_json"]:
                data = json.loads(row["data_json"])
                if "loss" in data:
                    curve[int(row["step"])] = float(data["loss"])
        return curve

    # --- the queue (worker side) --------------------------------------------------------------------

    def claim(self, device: str, worker: str) -> tuple[dict[str, Any], str] | None:
        """Hold ``device`` and the next job to run on it; returns (job, claim token) or None."""
        token = f"{worker}/{secrets.token_hex(6)}"
        now = time.time()
        with self.engine.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(insert(devices).values(name=device, holder=None, lease_until=None))
            except IntegrityError:
                pass
            held = conn.execute(
                update(devices)
                .where(
                    devices.c.name == device,
                    or_(devices.c.holder.is_(None), devices.c.lease_until < now),
                )
                .values(holder=token, lease_until=now + self.lease_s)
            ).rowcount
        if not held:
            return None
        claimable = or_(jobs.c.status == "queued", (jobs.c.status == "running") & (jobs.c.lease_until < now))
        with self.engine.begin() as conn:
            candidates = conn.execute(
                select(jobs.c.id).where(claimable).order_by(jobs.c.status.desc(), jobs.c.created_at).limit(5)
            ).all()
            for (job_id,) in candidates:  # running (a resume) sorts before queued
                taken = conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, claimable)
                    .values(
                        status="running",
                        claimed_by=token,
                        lease_until=now + self.lease_s,
                        device=device,
                        attempts=jobs.c.attempts + 1,
                    )
                ).rowcount
                if taken:
                    conn.execute(
                        update(jobs)
                        .where(jobs.c.id == job_id, jobs.c.started_at.is_(None))
                        .values(started_at=now)
                    )
                    job = _row(conn.execute(select(jobs).where(jobs.c.id == job_id)).one())
                    return job, token
        self.release_device(device, token)
        return None

    def release_device(self, device: str, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(devices)
                .where(devices.c.name == device, devices.c.holder == token)
                .values(holder=None, lease_until=None)
            )

    def heartbeat(
        self,
        job_id: str,
        device: str,
        token: str,
        *,
        spent_s: float,
        pending: list[Callable[[Connection], None]],
        estimated_finish: float | None,
        trained_steps: int | None,
    ) -> tuple[bool, bool]:
        """Extend the leases, add device time, write the pending events; returns (still ours, cancel?)."""
        now = time.time()
        values: dict[str, Any] = {
            "lease_until": now + self.lease_s,
            "device_seconds": jobs.c.device_seconds + spent_s,
        }
        if estimated_finish is not None:
            values["estimated_finish"] = estimated_finish
        if trained_steps is not None:
            values["trained_steps"] = trained_steps
        with self.engine.begin() as conn:
            ours = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.claimed_by == token, jobs.c.status == "running")
                .values(**values)
            ).rowcount
            if not ours:
                return False, True
            conn.execute(
                update(devices)
                .where(devices.c.name == device, devices.c.holder == token)
                .values(lease_until=now + self.lease_s)
            )
            for write in pending:
                write(conn)
            cancel = conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar()
        return True, bool(cancel)

    def finish(
        self,
        job_id: str,
        token: str,
        status: str,
        *,
        message: str,
        level: str = "info",
        fine_tuned_model: str | None = None,
        error: dict[str, Any] | None = None,
        trained_steps: int | None = None,
        spent_s: float = 0.0,
        ledger: Callable[[Connection, dict[str, Any]], None] | None = None,
    ) -> bool:
        """End the job (its status, last event and ledger row in one transaction) if still ours."""
        values: dict[str, Any] = {
            "status": status,
            "finished_at": time.time(),
            "claimed_by": None,
            "lease_until": None,
            "device_seconds": jobs.c.device_seconds + spent_s,
            "fine_tuned_model": fine_tuned_model,
            "error_json": json.dumps(error) if error else None,
        }
        if trained_steps is not None:
            values["trained_steps"] = trained_steps
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.claimed_by == token)
                .values(**db.fit(jobs, values))
            ).rowcount
            if not done:
                return False
            self._event(
                conn,
                job_id,
                status,
                message,
                level=level,
                data={"fine_tuned_model": fine_tuned_model} if fine_tuned_model else error,
            )
            if ledger is not None:
                ledger(conn, _row(conn.execute(select(jobs).where(jobs.c.id == job_id)).one()))
        return True

    def hand_back(self, job_id: str, token: str) -> None:
        """A clean shutdown: the job stays ``running`` with an expired lease, so the next worker to look
        resumes it at once from its last checkpoint."""
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.claimed_by == token).values(lease_until=0.0)
            )

    def writer(self, job_id: str, kind: str, message: str, **fields: Any) -> Callable[[Connection], None]:
        """A pending event write (run later inside a heartbeat's transaction)."""
        created_at = time.time()
        return lambda conn: self._event(conn, job_id, kind, message, created_at=created_at, **fields)

    def forget_after(self, job_id: str, step: int) -> Callable[[Connection], None]:
        """A pending delete of the step events (and samples) past ``step``: a resume runs them again."""
        return lambda conn: conn.execute(
            events.delete().where(
                events.c.job_id == job_id,
                events.c.step > step,
                events.c.kind.in_(("step", "samples", "checkpoint")),
            )
        )
