"""The job worker: runs queued async and batch lines, a bounded number at once, one worker per process.

It claims a line from the job store (:mod:`groundglass.server.jobs`), keeps its lease alive with a
heartbeat while the line runs, answers it as ``POST /chat/completions`` would
(:func:`groundglass.server.answer_service.complete`), and commits the result with its ledger row. A
separate loop ends batches past their completion window. On a clean stop its running lines go back to
the queue at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import socket
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError
from sqlalchemy import select

from groundglass.log import get_logger
from groundglass.server import db
from groundglass.server.answer_service import AnswerContext, complete
from groundglass.server.auth import Principal
from groundglass.server.errors import APIError, error_body
from groundglass.server.schemas import ChatRequest
from groundglass.server.usage import new_request_id, usage_entry

if TYPE_CHECKING:
    from groundglass.server.jobs import JobStore
    from groundglass.server.usage import Cost, UsageEntry

log = get_logger(__name__)


class WorkerContext(AnswerContext, Protocol):
    """What the worker needs of the server (the server's state provides it): the job store, and what
    answering a line needs."""

    jobs: JobStore


class JobWorker:
    """Runs job lines with at most ``concurrency`` at once; one per server process."""

    def __init__(self, st: WorkerContext, concurrency: int, lease_s: float) -> None:
        self.st = st
        self.store = st.jobs
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.worker_id = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._claims = itertools.count()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._main = asyncio.create_task(self._run(), name="job-worker")
        self._beat = asyncio.create_task(self._heartbeat(), name="job-heartbeat")
        self._expiry = asyncio.create_task(self._expire(), name="job-expiry")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for t in (self._main, self._beat, self._expiry, *self._tasks):
            if t is not None:
                t.cancel()
        for t in (self._main, self._beat, self._expiry, *list(self._tasks)):
            if t is not None:
                with suppress(asyncio.CancelledError, Exception):
                    await t
        await asyncio.to_thread(self.store.release, self.worker_id)

    async def _heartbeat(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.lease_s / 3)
            if self._tasks:
                with suppress(Exception):
                    await asyncio.to_thread(self.store.renew, self.worker_id, self.lease_s)

    async def _expire(self, every_s: float = 1.0) -> None:
        """End overdue batches (also while every slot is busy with a long line)."""
        while not self._stopping:
            try:
                for job_id in await asyncio.to_thread(self.store.expire_due):
                    log.info("batch_expired", job=job_id)
            except Exception as exc:  # the database is away: try again on the next tick
                log.warning("batch_expiry_failed", error=repr(exc))
            await asyncio.sleep(every_s)

    async def _run(self) -> None:
        await asyncio.to_thread(self.store.finalize_stragglers)
        slots = asyncio.Semaphore(self.concurrency)
        while not self._stopping:
            await slots.acquire()
            token = f"{self.worker_id}/{next(self._claims)}"
            try:
                item = await asyncio.to_thread(self.store.claim, token, self.lease_s)
            except Exception as exc:
                log.warning("job_claim_failed", error=repr(exc))
                item = None
            if item is None:
                slots.release()
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(1.0, self.lease_s / 2))
                continue
            task = asyncio.create_task(self._process(item))
            self._tasks.add(task)
            task.add_done_callback(lambda t: (self._tasks.discard(t), slots.release()))

    async def _process(self, item: dict[str, Any]) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        job = await asyncio.to_thread(self._job_owner, item["job_id"])
        if job is None:
            return
        outcome = await self._answer(item, job, request_id, started)
        if outcome is None or self._stopping:  # stopped meanwhile: the line goes back to the queue
            return
        status_code, result, entry = outcome
        committed = await asyncio.to_thread(self.store.finish, item, status_code, result, request_id, entry)
        self.st.metrics.job_items.labels("done" if status_code < 400 else "failed").inc()
        if not committed:  # its lease ran out and another worker took it, or its batch expired meanwhile
            log.warning("job_line_result_dropped", job=item["job_id"], line=item["line_no"])

    async def _answer(
        self, item: dict[str, Any], job: dict[str, Any], request_id: str, started: float
    ) -> tuple[int, dict[str, Any], UsageEntry] | None:
        """The line answered as ``POST /chat/completions`` would: (status, body, ledger row); a failure is
        an OpenAI-style error body with its status. None when a shutdown cancelled it."""
        who = Principal(key_id=job["key_id"], project=job["project"], rpm=1, tpm=1)
        raw = json.loads(item["body"])
        model = str(raw.get("model", "")) if isinstance(raw, dict) else ""

        def entry(status: int, usage: dict[str, Any] | None = None, cost: Cost | None = None) -> UsageEntry:
            return usage_entry(
                who,
                request_id=request_id,
                model=model,
                endpoint=job["endpoint"],
                status=status,
                started=started,
                usage=usage,
                cost=cost,
            )

        try:
            body = ChatRequest.model_validate({**raw, "stream": False})
            plan = self.st.answerer.plan(body)
            result, usage, cost = await complete(self.st, plan, request_id)
            return 200, result, entry(200, usage, cost)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first.get("loc", ()))
            message = f"invalid value for '{param}': {first.get('msg')}"
            return 400, error_body(message, param=param or None, code="invalid_value"), entry(400)
        except APIError as exc:
            if exc.status == 499:  # cancelled by shutdown
                return None
            return exc.status, exc.body(), entry(exc.status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job_line_failed", job=item["job_id"], line=item["line_no"], error=repr(exc))
            message = f"internal error ({type(exc).__name__})"
            return 500, error_body(message, type="api_error", code="internal_error"), entry(500)

    def _job_owner(self, job_id: str) -> dict[str, Any] | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(db.jobs.c.key_id, db.jobs.c.project, db.jobs.c.endpoint).where(db.jobs.c.id == job_id)
            ).first()
        return dict(row._mapping) if row else None
