"""The fine-tuning worker: one thread per server process that runs one job at a time on its device.

A job is ``groundglass dreambooth fit`` itself (:func:`groundglass.dreambooth.fit.run_fit`) on the
config :func:`groundglass.dreambooth.job.fit_config` writes into the job's folder
(``$GROUNDGLASS_HOME/finetune/<job id>/``: ``photos/``, ``class_images/``, ``run/`` with the
checkpoints and samples, ``fit.yaml``), always with ``--ckpt_path last``, so a job whose server died
resumes from its last checkpoint, exactly. A :class:`~groundglass.dreambooth.watch.FitWatcher`
turns the run's progress into events; they are queued in memory and written by a heartbeat thread
(every ``server.job_lease_s / 4`` s, at most 0.5 s) that also extends the job's lease and reads its
cancel flag, so the training thread never waits for the database; before each checkpoint the queue
is written out first.

Phases: ``class_images`` (the base model draws the class images prior preservation needs), then
``training``, then ``export`` (what the model id serves: the run's ``last.ckpt``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from sqlalchemy import Connection, select

from groundglass.errors import GroundglassError
from groundglass.log import get_logger
from groundglass.server import db
from groundglass.server.finetune.photos import unpack
from groundglass.server.finetune.store import fine_tuned_model_id
from groundglass.threads import native_thread

if TYPE_CHECKING:
    from groundglass.server.finetune.store import FineTuneStore


class JobHost(Protocol):
    """What the worker needs of the service that owns it (the service is one)."""

    store: FineTuneStore
    accelerator: str

    def job_dir(self, job_id: str) -> Path: ...

    def sample_url(self, job_id: str, path: Path) -> str: ...

    def base_model_path(self, name: str) -> str: ...

    def ledger_writer(self) -> Callable[[Connection, dict[str, Any]], None]: ...


log = get_logger(__name__)


def device_name(accelerator: str) -> str:
    """``<host>/cuda:0`` or ``<host>/cpu``: jobs on one device run one at a time."""
    import torch

    gpu = accelerator != "cpu" and torch.cuda.is_available()
    return f"{socket.gethostname()}/{'cuda:0' if gpu else 'cpu'}"


class Attempt:
    """One run of one job: the pending events, the heartbeat, the cancel flag."""

    def __init__(self, service: JobHost, job: dict[str, Any], token: str, device: str) -> None:
        self.service = service
        self.store = service.store
        self.job = job
        self.token = token
        self.device = device
        self.cancel = threading.Event()
        self.lost = False
        self._pending: list[Callable[[Connection], None]] = []
        self._lock = threading.Lock()
        self._clock = time.monotonic()
        self._stop = threading.Event()
        self._eta: float | None = None
        self._steps: int | None = None
        self._thread = threading.Thread(
            target=self._beat, name=f"finetune-heartbeat-{job['id']}", daemon=True
        )

    def __enter__(self) -> Attempt:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def add(self, write: Callable[[Connection], None]) -> None:
        with self._lock:
            self._pending.append(write)

    def spent(self) -> float:
        now = time.monotonic()
        spent, self._clock = now - self._clock, now
        return spent

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            try:
                ours, cancel = self.store.heartbeat(
                    self.job["id"],
                    self.device,
                    self.token,
                    spent_s=self.spent(),
                    pending=pending,
                    estimated_finish=self._eta,
                    trained_steps=self._steps,
                )
            except Exception as exc:  # a database hiccup: keep the events for the next beat
                self._pending = pending + self._pending
                log.warning("finetune heartbeat failed", job=self.job["id"], error=str(exc))
                return
        if not ours:
            self.lost = True
        if cancel:
            self.cancel.set()

    def _beat(self) -> None:
        every = min(0.5, self.store.lease_s / 4)
        while not self._stop.wait(every):
            self.flush()

    # --- what the watcher reports --------------------------------------------------------------

    def report(self, kind: str, data: dict[str, Any]) -> None:
        job_id, store = self.job["id"], self.store
        step = data.get("step")
        if kind == "start":
            if step:
                self.add(store.forget_after(job_id, int(step)))
            verb = f"Training resumed at step {step}" if step else "Training started"
            self.add(
                store.writer(
                    job_id,
                    "phase",
                    f"{verb} ({data['max_steps']} steps)",
                    data={"phase": "training", **data},
                    step=None,
                )
            )
        elif kind == "step":
            self._steps = int(step)
            if data.get("eta_s") is not None:
                self._eta = time.time() + float(data["eta_s"])
            metrics = {**data, "train_loss": data.get("loss")}
            loss = data.get("loss")
            text = (
                f"Step {step}/{data['max_steps']}: training loss={loss:.4f}"
                if loss is not None
                else (f"Step {step}/{data['max_steps']}")
            )
            self.add(store.writer(job_id, "step", text, data=metrics, step=int(step), type="metrics"))
        elif kind == "checkpoint":
            self.add(
                store.writer(
                    job_id, "checkpoint", f"Checkpoint saved at step {step}", data=data, step=int(step)
                )
            )
        elif kind == "samples":
            files = [self.service.sample_url(self.job["id"], Path(f)) for f in data["files"]]
            self.add(
                store.writer(
                    job_id,
                    "samples",
                    f"Samples drawn at step {step}",
                    data={"step": step, "images": files},
                    step=int(step),
                )
            )
        elif kind == "stopped":
            self.add(store.writer(job_id, "phase", f"Training stopped at step {step}", data=data))


class FineTuneWorker:
    """Claims jobs for this process's device and runs them, one at a time."""

    def __init__(self, service: JobHost, poll_s: float = 1.0) -> None:
        self.service = service
        self.poll_s = poll_s
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = native_thread(self._loop, "finetune-worker")
        self.current: Attempt | None = None

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the running job's current step; the job is handed back (still ``running``, its
        lease ended), so the next worker to look resumes it from the checkpoint saved on stopping."""
        self._stop.set()
        self._wake.set()
        if self.current is not None:
            self.current.cancel.set()
        self._thread.join(timeout)

    def cancel_local(self, job_id: str) -> None:
        if self.current is not None and self.current.job["id"] == job_id:
            self.current.cancel.set()

    def _loop(self) -> None:
        device = device_name(self.service.accelerator)
        while not self._stop.is_set():
            try:
                claimed = self.service.store.claim(device, self.name)
            except Exception as exc:
                log.warning("finetune claim failed", error=str(exc))
                claimed = None
            if claimed is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            job, token = claimed
            try:
                self.run(job, token, device)
                self.service.store.release_device(device, token)
            except Exception as exc:  # the database went away: the leases expire, another worker resumes
                log.error("finetune worker error", job=job["id"], error=str(exc))
                self._wake.wait(self.poll_s)

    def run(self, job: dict[str, Any], token: str, device: str) -> None:
        service, store = self.service, self.service.store
        attempt = Attempt(service, job, token, device)
        self.current = attempt
        folder = service.job_dir(job["id"])
        try:
            with attempt:
                result = self._fit(attempt, folder)
            if self._stop.is_set() and attempt.cancel.is_set() and not self._cancel_requested(job["id"]):
                log.info("finetune job left for a later resume", job=job["id"])
                store.hand_back(job["id"], token)
                return  # shutting down: the job resumes from its checkpoint when a server runs again
            self._end(attempt, folder, result)
        except Exception as exc:
            if isinstance(exc, GroundglassError):  # what a user can act on: their job's error says it
                log.warning("finetune job failed", job=job["id"], error=str(exc))
            else:
                log.error(
                    "finetune job failed", job=job["id"], error=str(exc), traceback=traceback.format_exc()
                )
            message = exc.message if isinstance(exc, GroundglassError) else f"internal error: {exc}"
            code = exc.code if isinstance(exc, GroundglassError) else "internal_error"
            store.finish(
                job["id"],
                token,
                "failed",
                message=f"Job failed: {message}",
                level="error",
                error={"code": code, "message": message, "param": None},
                spent_s=attempt.spent(),
                ledger=service.ledger_writer(),
            )
        finally:
            self.current = None

    def _cancel_requested(self, job_id: str) -> bool:
        from groundglass.server.finetune.tables import jobs

        with self.service.store.engine.connect() as conn:
            return bool(conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar())

    def _fit(self, attempt: Attempt, folder: Path) -> dict[str, Any]:
        from groundglass.dreambooth.fit import run_fit
        from groundglass.dreambooth.job import Hyperparameters, fit_config
        from groundglass.dreambooth.priors import existing_images
        from groundglass.dreambooth.watch import FitWatcher

        service, job = self.service, attempt.job
        hp = Hyperparameters.model_validate(job["hyperparameters"])
        photos = folder / "photos"
        if not photos.is_dir() or not any(photos.iterdir()):
            self._unpack_photos(job, photos)
        config = fit_config(
            hp,
            base_model=service.base_model_path(job["model"]),
            root=folder / "run",
            instance_dir=photos,
            class_dir=folder / "class_images",
            accelerator=service.accelerator,
        )
        path = folder / "fit.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        if hp.prior_loss_weight > 0 and len(existing_images(folder / "class_images")) < hp.num_class_images:
            attempt.add(
                attempt.store.writer(
                    job["id"],
                    "phase",
                    f"Drawing {hp.num_class_images} class images with the base model",
                    data={"phase": "class_images"},
                )
            )
            attempt.flush()
        watcher = FitWatcher(attempt.report, should_stop=attempt.cancel.is_set, flush=attempt.flush)
        try:
            code = run_fit(["--config", str(path), "--ckpt_path", "last"], callbacks=[watcher])
        except SystemExit as exc:  # jsonargparse refused the config (its message went to the log)
            raise GroundglassError(
                f"the fit config was refused (exit code {exc.code})",
                "see the server log",
                code="invalid_config",
            ) from None
        attempt.flush()
        ckpt = folder / "run" / "checkpoints" / "last.ckpt"
        return {"code": code, "stopped": watcher.stopped, "checkpoint": ckpt, "steps": hp.train_steps}

    def _unpack_photos(self, job: dict[str, Any], photos: Path) -> None:
        f = db.files.c
        with self.service.store.engine.connect() as conn:
            content = conn.execute(select(f.content).where(f.id == job["training_file"])).scalar()
        if content is None:
            raise GroundglassError(
                f"the training file {job['training_file']} was deleted",
                "upload the photos again and create a new job",
                code="file_not_found",
            )
        unpack(content, photos)

    def _end(self, attempt: Attempt, folder: Path, result: dict[str, Any]) -> None:
        import torch

        job, store, service = attempt.job, attempt.store, self.service
        ckpt: Path = result["checkpoint"]
        steps = (
            int(torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)["global_step"])
            if ckpt.exists()
            else 0
        )
        if attempt.lost:
            log.warning("finetune job claimed by another worker", job=job["id"])
            return
        if result["stopped"] or result["code"]:
            store.finish(
                job["id"],
                attempt.token,
                "cancelled",
                message=f"Job cancelled at step {steps}; its last checkpoint is kept",
                trained_steps=steps,
                spent_s=attempt.spent(),
                ledger=service.ledger_writer(),
            )
            return
        attempt.add(store.writer(job["id"], "phase", "Exporting the model", data={"phase": "export"}))
        attempt.flush()
        model_id = fine_tuned_model_id(job["model"], job["project"], job["suffix"], job["id"])
        store.finish(
            job["id"],
            attempt.token,
            "succeeded",
            message=f"Job succeeded after {steps} steps: model {model_id}",
            fine_tuned_model=model_id,
            trained_steps=steps,
            spent_s=attempt.spent(),
            ledger=service.ledger_writer(),
        )
