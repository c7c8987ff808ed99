"""DreamBooth as a service, without HTTP: uploads, jobs, models and images for the API's routes.

:class:`FineTuning` is what the routes call. It knows the base models (``toy-world``, the embedded
toy-world model, always; more under ``server.image_models``), checks uploads
(:mod:`~groundglass.server.finetune.photos`), validates hyperparameters like the fit config
(:mod:`groundglass.dreambooth.job`), queues jobs (:mod:`~groundglass.server.finetune.store`), runs
them (:mod:`~groundglass.server.finetune.worker`), and draws images with a base or fine-tuned model
(:mod:`~groundglass.server.finetune.images`). The ledger gets one row per finished job (training
steps, device-seconds) and one per image request, priced from ``server.prices[<base model>]``.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from groundglass.errors import GroundglassError, NotFoundError
from groundglass.log import get_logger
from groundglass.server import db
from groundglass.server.finetune import photos as photo_checks
from groundglass.server.finetune.images import ImageGenerator
from groundglass.server.finetune.store import FineTuneStore
from groundglass.server.usage import Cost, UsageEntry

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.config import Settings
    from groundglass.server.auth import Principal
    from groundglass.server.finetune.worker import FineTuneWorker
    from groundglass.server.usage import Ledger, Pricing

log = get_logger(__name__)
TOY_WORLD = "toy-world"
FILE_PURPOSE = "fine-tune"


def toy_world_dir() -> Path:
    from groundglass.dreambooth.world.personalise import base_model_dir

    return base_model_dir()


class FineTuning:
    def __init__(self, settings: Settings, engine: Engine, ledger: Ledger, pricing: Pricing) -> None:
        self.settings = settings
        self.engine = engine
        self.ledger = ledger
        self.pricing = pricing
        self.store = FineTuneStore(engine, settings.server.job_lease_s)
        self.accelerator = settings.server.finetune_accelerator
        self.root = settings.home / "finetune"
        self.images = ImageGenerator(settings.home / "images")
        self.worker: FineTuneWorker | None = None
        self._export_lock = threading.Lock()

    # --- base models --------------------------------------------------------------------------------

    def base_models(self) -> dict[str, str]:
        return {TOY_WORLD: str(toy_world_dir()), **self.settings.server.image_models}

    def base_model_path(self, name: str) -> str:
        models = self.base_models()
        if name not in models:
            raise NotFoundError(
                f"the base model '{name}' is not configured on this server",
                f"use one of: {', '.join(sorted(models))} (more under [server.image_models])",
            )
        return models[name]

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def sample_url(self, job_id: str, path: Path) -> str:
        return f"/v1/fine_tuning/jobs/{job_id}/samples/{path.parent.name}/{path.name}"

    # --- uploads --------------------------------------------------------------------------------------

    def check_upload(self, files: list[tuple[str, bytes]]) -> tuple[str, bytes, int]:
        """(stored name, bundled zip, photo count) of a checked upload."""
        s = self.settings.server
        checked = photo_checks.check_upload(
            files, max_pixels=s.max_image_pixels, max_images=s.finetune_max_images
        )
        name = files[0][0] if len(files) == 1 else f"{len(checked)} photos.zip"
        if not name.lower().endswith(".zip"):
            name = f"{Path(name).stem}.zip"
        return name, photo_checks.bundle(checked), len(checked)

    def store_photos(self, who: Principal, name: str, bundled: bytes) -> dict[str, Any]:
        """Store the checked photos as a file (purpose ``fine-tune``); returns OpenAI's file object."""
        row = db.fit(
            db.files,
            {
                "id": f"file_{secrets.token_hex(12)}",
                "project": who.project,
                "purpose": FILE_PURPOSE,
                "filename": name,
                "bytes": len(bundled),
                "created_at": time.time(),
                "content": bundled,
            },
        )
        with self.engine.begin() as conn:
            conn.execute(insert(db.files).values(**row))
        return {
            "id": row["id"],
            "object": "file",
            "bytes": row["bytes"],
            "created_at": int(row["created_at"]),
            "filename": row["filename"],
            "purpose": FILE_PURPOSE,
        }

    def get_file(self, who: Principal, file_id: str) -> dict[str, Any] | None:
        f = db.files.c
        q = select(f.id, f.purpose, f.project).where(f.id == file_id)
        if not who.admin:
            q = q.where(f.project == who.project)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return dict(row._mapping) if row else None

    # --- jobs -----------------------------------------------------------------------------------------

    def create_job(
        self,
        who: Principal,
        *,
        model: str,
        training_file: dict[str, Any] | None,
        training_file_id: str,
        method: dict[str, Any] | None,
        suffix: str | None,
        seed: int | None,
        metadata: dict[str, str] | None,
    ) -> dict[str, Any]:
        from groundglass.dreambooth.family import detect_family
        from groundglass.dreambooth.job import parse_hyperparameters, resolve_preset

        base_path = self.base_model_path(model)
        check_training_file(training_file, training_file_id)
        raw = method_hyperparameters(method, seed)
        where = "method.dreambooth.hyperparameters"
        hp = parse_hyperparameters(raw, where=where)
        # The preset must fit the base model's family (SD 1.x/2.x or SDXL), read from the model itself.
        hp = resolve_preset(hp, detect_family(base_path, local_files_only=True), model, where=where)
        job = self.store.create_job(
            who,
            model=model,
            training_file=training_file_id,
            suffix=suffix,
            hyperparameters=hp.model_dump(mode="json"),
            metadata=metadata,
        )
        if self.worker is not None:
            self.worker.wake()
        return job

    def cancel(self, who: Principal, job_id: str) -> dict[str, Any] | None:
        job = self.store.request_cancel(who, job_id)
        if job is not None and self.worker is not None:
            self.worker.cancel_local(job_id)
        return job

    def checkpoints(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The kept checkpoints of a job (``last.ckpt`` and any ``step=N.ckpt``), newest first."""
        import torch

        folder = self.job_dir(job["id"]) / "run" / "checkpoints"
        curve = self.store.loss_curve(job["id"])
        out = []
        for path in sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
            try:
                step = int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])
            except Exception:  # being written, or damaged: not a kept checkpoint
                continue
            out.append(
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": f"ftckpt-{job['id'].removeprefix('ftjob-')}-{path.stem}",
                    "created_at": int(path.stat().st_mtime),
                    "fine_tuned_model_checkpoint": f"{job['fine_tuned_model'] or job['model']}:{path.stem}",
                    "fine_tuning_job_id": job["id"],
                    "step_number": step,
                    "metrics": {"step": step, "train_loss": curve.get(step)},
                }
            )
        return out

    def export(self, who: Principal, job: dict[str, Any], fmt: str) -> tuple[Path, str]:
        """The job's model in ``fmt`` (``diffusers``: the folder as a zip; ``single-file``: one
        original-layout .safetensors; ``lora``: the adapters), made once; returns (file, download name)."""
        from groundglass.dreambooth.export import FORMATS

        if fmt not in FORMATS or fmt == "all":
            raise GroundglassError(
                f"unknown export format {fmt!r}",
                "use diffusers, single-file, lora, lora-kohya or lora-comfyui",
                param="format",
            )
        if job["status"] != "succeeded":
            raise GroundglassError(
                f"job {job['id']} has not succeeded (it is {job['status']})",
                "export a succeeded job's model",
                param="fine_tuning_job_id",
            )
        name = (job["fine_tuned_model"] or job["id"]).replace(":", "_")
        folder = self.job_dir(job["id"]) / "export"
        target = (
            folder
            / {
                "diffusers": f"{name}-diffusers.zip",
                "single-file": f"{name}.safetensors",
                "lora": f"{name}-lora.safetensors",
                "lora-kohya": f"{name}-lora-kohya.safetensors",
                "lora-comfyui": f"{name}-lora-comfyui.safetensors",
            }[fmt]
        )
        with self._export_lock:
            if not target.exists():
                self._export(job, fmt, target)
        return target, target.name

    def _export(self, job: dict[str, Any], fmt: str, target: Path) -> None:
        import shutil
        import tempfile

        from groundglass.dreambooth.export import export_model
        from groundglass.dreambooth.lora_formats import LoraRun
        from groundglass.dreambooth.trained import load_trained

        components, info = load_trained(self.job_dir(job["id"]) / "run" / "checkpoints" / "last.ckpt")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            run = LoraRun.of(info, title=target.stem)
            written = export_model(components, Path(tmp) / "model", formats={fmt}, name="model", run=run)
            if fmt == "diffusers":
                archive = shutil.make_archive(
                    str(Path(tmp) / "model-zip"), "zip", root_dir=written["diffusers"]
                )
                os.replace(archive, target)
            else:
                os.replace(written[fmt], target)

    # --- models ---------------------------------------------------------------------------------------

    def models(self, who: Principal) -> list[dict[str, Any]]:
        base = [
            {"id": name, "object": "model", "created": 0, "owned_by": "groundglass", "kind": "image"}
            for name in sorted(self.base_models())
        ]
        tuned = [
            {
                "id": job["fine_tuned_model"],
                "object": "model",
                "created": int(job["finished_at"] or 0),
                "owned_by": job["project"],
                "kind": "image",
                "root": job["model"],
                "parent": job["model"],
                "fine_tuning_job_id": job["id"],
            }
            for job in self.store.succeeded_models(who)
        ]
        return base + tuned

    def model_source(self, who: Principal, model: str) -> tuple[str, str]:
        """(base model name, what to load: a base folder or a fine-tuned job's last.ckpt)."""
        if model in self.base_models():
            return model, self.base_models()[model]
        job = self.store.job_of_model(who, model) if model.startswith("ft:") else None
        if job is None:
            raise NotFoundError(
                f"the model '{model}' does not exist",
                "use a base model or the fine_tuned_model of a succeeded job (GET /v1/models)",
            )
        ckpt = self.job_dir(job["id"]) / "run" / "checkpoints" / "last.ckpt"
        if not ckpt.exists():
            raise NotFoundError(f"the checkpoint of {model} is gone", "fine-tune the model again")
        return job["model"], str(ckpt)

    # --- the ledger -------------------------------------------------------------------------------------

    def ledger_writer(self) -> Callable[[Connection, dict[str, Any]], None]:
        """The ledger row of a finished job, written in the transaction that ends it."""

        def write(conn: Connection, job: dict[str, Any]) -> None:
            plan = self.pricing.plan(job["model"])
            steps, seconds = int(job["trained_steps"] or 0), float(job["device_seconds"] or 0.0)
            cost = Cost()
            if plan is not None:
                cost.request_cost = (
                    steps * plan.training_steps_per_thousand / 1000
                    + seconds * plan.device_seconds_per_hour / 3600
                )
            status = {"succeeded": 200, "cancelled": 499}.get(job["status"], 500)
            entry = UsageEntry(
                request_id=job["id"],
                key_id=job["key_id"],
                project=job["project"],
                model=job["fine_tuned_model"] or job["model"],
                endpoint="/v1/fine_tuning/jobs",
                status=status,
                latency_ms=seconds * 1000,
                training_steps=steps,
                device_seconds=seconds,
                cost=cost,
            )
            self.ledger.record(entry, conn)

        return write

    def record_images(
        self, who: Principal, *, model: str, base: str, count: int, started: float, request_id: str
    ) -> None:
        plan = self.pricing.plan(base)
        cost = Cost(request_cost=count * plan.images_per_thousand / 1000 if plan is not None else 0.0)
        entry = UsageEntry(
            request_id=request_id,
            key_id=who.key_id,
            project=who.project,
            model=model,
            endpoint="/v1/images/generations",
            latency_ms=(time.perf_counter() - started) * 1000,
            images=count,
            cost=cost,
        )
        self.ledger.record(entry)


def check_training_file(training_file: dict[str, Any] | None, training_file_id: str) -> None:
    """Refuse a training file that was not found, or that is not a photo upload (purpose ``fine-tune``)."""
    if training_file is None:
        raise NotFoundError(f"no file {training_file_id!r}", "upload the photos with purpose 'fine-tune'")
    if training_file["purpose"] != FILE_PURPOSE:
        raise GroundglassError(
            f"file {training_file_id} has purpose {training_file['purpose']!r}, not {FILE_PURPOSE!r}",
            "upload the photos with purpose 'fine-tune'",
            param="training_file",
            code="invalid_file",
        )


def method_hyperparameters(method: dict[str, Any] | None, seed: int | None) -> dict[str, Any]:
    """The hyperparameters a job's ``method`` sends (``seed`` joins them unless they set one), its shape
    checked: OpenAI's ``{type: "dreambooth", dreambooth: {hyperparameters: {...}}}`` and nothing else."""
    method = method or {"type": "dreambooth"}
    if method.get("type") != "dreambooth":
        raise GroundglassError(
            f"method.type {method.get('type')!r} is not supported here",
            "use method: {type: 'dreambooth', dreambooth: {hyperparameters: {...}}}",
            param="method.type",
        )
    extra = sorted(set(method) - {"type", "dreambooth"})
    if extra:
        raise GroundglassError(
            f"unknown field method.{extra[0]}",
            "send method.type and method.dreambooth",
            param=f"method.{extra[0]}",
        )
    section = method.get("dreambooth") or {}
    if not isinstance(section, dict):
        raise GroundglassError(
            "method.dreambooth must be an object",
            "send {hyperparameters: {...}}",
            param="method.dreambooth",
        )
    extra = sorted(set(section) - {"hyperparameters"})
    if extra:
        raise GroundglassError(
            f"unknown field method.dreambooth.{extra[0]}",
            "send method.dreambooth.hyperparameters",
            param=f"method.dreambooth.{extra[0]}",
        )
    raw = _old_steps(dict(section.get("hyperparameters") or {}))
    if seed is not None:
        raw.setdefault("seed", seed)
    return raw


def _old_steps(raw: dict[str, Any]) -> dict[str, Any]:
    """``steps``, the old name of ``train_steps``, read for one release: everywhere else ``steps`` counts
    denoising steps (``sample_steps`` here), so the optimizer-step count was renamed. Both sent with
    different values is a 400 naming both, since either could be the one meant."""
    if "steps" not in raw:
        return raw
    old = raw.pop("steps")
    where = "method.dreambooth.hyperparameters"
    if "train_steps" in raw and raw["train_steps"] != old:
        raise GroundglassError(
            f"{where}.train_steps ({raw['train_steps']!r}) and {where}.steps, its old name ({old!r}), differ",
            "send train_steps only (optimizer steps)",
            param=f"{where}.train_steps",
        )
    raw.setdefault("train_steps", old)
    log.warning(
        "deprecated_field",
        field=f"{where}.steps",
        fix="send train_steps (optimizer steps); steps goes away in the next release",
    )
    return raw
