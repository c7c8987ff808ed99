"""The fine-tuning service without HTTP: a toy-world job runs, reports, bills, cancels, and validates."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from finetune_helpers import TOY_HYPERPARAMETERS, star_photos
from sqlalchemy import select

from groundglass.config import load_settings
from groundglass.errors import GroundglassError
from groundglass.server import db
from groundglass.server.auth import Principal
from groundglass.server.finetune.service import FineTuning
from groundglass.server.finetune.worker import FineTuneWorker, device_name
from groundglass.server.usage import Ledger, Pricing

WHO = Principal("key_test", "studio", 60, 100_000)


@pytest.fixture
def service(tmp_path: Path) -> FineTuning:
    import torch

    torch.set_num_threads(1)
    settings = load_settings(
        None,
        home=str(tmp_path / "home"),
        server={
            "job_lease_s": 2.0,
            "finetune_accelerator": "cpu",
            "prices": {"toy-world": {"training_steps_per_thousand": 10.0, "device_seconds_per_hour": 36.0}},
        },
    )
    engine = db.get_engine(settings)
    return FineTuning(settings, engine, Ledger(engine), Pricing(settings.server))


def create(service: FineTuning, **hyperparameters: Any) -> dict[str, Any]:
    return create_with(service, {**TOY_HYPERPARAMETERS, **hyperparameters})


def create_with(service: FineTuning, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """A job on the star's photos with exactly ``hyperparameters``."""
    name, bundled, count = service.check_upload([(p.name, p.read_bytes()) for p in star_photos()])
    assert count == 4
    stored = service.store_photos(WHO, name, bundled)
    f = service.get_file(WHO, stored["id"])
    method = {"type": "dreambooth", "dreambooth": {"hyperparameters": hyperparameters}}
    return service.create_job(
        WHO,
        model="toy-world",
        training_file=f,
        training_file_id=stored["id"],
        method=method,
        suffix="star",
        seed=None,
        metadata={"who": "test"},
    )


def run_next(service: FineTuning, worker: FineTuneWorker) -> None:
    device = device_name("cpu")
    claimed = service.store.claim(device, worker.name)
    assert claimed is not None
    job, token = claimed
    try:
        worker.run(job, token, device)
    finally:
        service.store.release_device(device, token)


def test_a_job_runs_reports_each_step_and_is_billed_once(service: FineTuning) -> None:
    job = create(service)
    assert job["status"] == "queued" and job["hyperparameters"]["train_steps"] == 6
    run_next(service, FineTuneWorker(service))
    done = service.store.get_job(WHO, job["id"])
    assert done is not None and done["status"] == "succeeded", done
    assert done["fine_tuned_model"] == f"ft:toy-world:studio:star:{job['id'].removeprefix('ftjob-')}"
    assert done["trained_steps"] == 6 and done["device_seconds"] > 0

    events = list(reversed(service.store.list_events(job["id"], limit=1000)))
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "queued" and kinds[-1] == "succeeded"
    phases = [json.loads(e["data_json"])["phase"] for e in events if e["kind"] == "phase"]
    assert phases == ["class_images", "training", "export"]
    steps = [e for e in events if e["kind"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]
    later = json.loads(steps[-1]["data_json"])
    assert {"loss", "loss_instance", "loss_prior", "lr", "steps_per_sec", "eta_s"} <= set(later)
    assert later["eta_s"] == 0 and later["steps_per_sec"] > 0
    samples = [json.loads(e["data_json"]) for e in events if e["kind"] == "samples"]
    assert [s["step"] for s in samples] == [3, 6]
    for s in samples:
        (url,) = s["images"]
        step_dir, name = url.split("/")[-2:]
        assert (service.job_dir(job["id"]) / "run" / "samples" / step_dir / name).is_file()
    assert [e["step"] for e in events if e["kind"] == "checkpoint"] == [3, 6]
    (kept,) = service.checkpoints(done)
    assert kept["step_number"] == 6 and kept["metrics"]["train_loss"] == later["loss"]

    with service.engine.connect() as conn:
        rows = [
            dict(r._mapping) for r in conn.execute(select(db.usage).where(db.usage.c.request_id == job["id"]))
        ]
    assert len(rows) == 1 and rows[0]["endpoint"] == "/v1/fine_tuning/jobs" and rows[0]["project"] == "studio"
    assert rows[0]["training_steps"] == 6 and rows[0]["device_seconds"] == pytest.approx(
        done["device_seconds"]
    )
    expected = 6 * 10.0 / 1000 + done["device_seconds"] * 36.0 / 3600
    assert rows[0]["total_cost"] == pytest.approx(expected, abs=1e-5)
    models = [m["id"] for m in service.models(WHO)]
    assert models == ["toy-world", done["fine_tuned_model"]]
    assert service.models(Principal("key_other", "other", 60, 1000)) == service.models(WHO)[:1]


def test_cancel_stops_at_the_next_step_and_keeps_the_checkpoint(service: FineTuning) -> None:
    job = create(service, train_steps=1000, checkpoint_every=1000, sample_every=0)
    worker = FineTuneWorker(service)

    def cancel_after_two_steps() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(
                e["kind"] == "step" and e["step"] >= 2 for e in service.store.list_events(job["id"], limit=5)
            ):
                service.cancel(WHO, job["id"])
                return
            time.sleep(0.1)

    canceller = threading.Thread(target=cancel_after_two_steps)
    canceller.start()
    run_next(service, worker)
    canceller.join()
    done = service.store.get_job(WHO, job["id"])
    assert done is not None and done["status"] == "cancelled" and done["fine_tuned_model"] is None
    assert 2 <= done["trained_steps"] < 20
    (kept,) = service.checkpoints(done)
    assert kept["step_number"] == done["trained_steps"]
    kinds = [e["kind"] for e in service.store.list_events(job["id"], limit=1000)]
    assert kinds[0] == "cancelled" and "cancelling" in kinds
    queued = create(service)
    assert service.cancel(WHO, queued["id"])["status"] == "cancelled"  # type: ignore[index]
    assert service.store.claim(device_name("cpu"), "nobody") is None  # nothing left to run


@pytest.mark.parametrize(
    ("method", "param", "words"),
    [
        (
            {"type": "dreambooth", "dreambooth": {"hyperparameters": {"stepz": 4}}},
            "method.dreambooth.hyperparameters.stepz",
            "unknown field",
        ),
        (
            {"type": "dreambooth", "dreambooth": {"hyperparameters": {"train_steps": 0}}},
            "method.dreambooth.hyperparameters.train_steps",
            "greater than or equal to 1",
        ),
        (
            {"type": "dreambooth", "dreambooth": {"hyperparameters": {"resolution": 30}}},
            "method.dreambooth.hyperparameters.resolution",
            "multiple of 8",
        ),
        (
            {"type": "dreambooth", "dreambooth": {"hyperparameters": {"class_prompt": None}}},
            "method.dreambooth.hyperparameters",
            "needs class_prompt",
        ),
        ({"type": "supervised"}, "method.type", "not supported"),
        (
            {"type": "dreambooth", "dreambooth": {"hyperparameters": {}, "extra": 1}},
            "method.dreambooth.extra",
            "unknown field",
        ),
    ],
)
def test_hyperparameters_are_validated_like_the_fit_config(
    service: FineTuning, method: dict[str, Any], param: str, words: str
) -> None:
    if method.get("dreambooth", {}).get("hyperparameters") == {"class_prompt": None}:
        method["dreambooth"]["hyperparameters"] = {**TOY_HYPERPARAMETERS, "class_prompt": None}
    f = {"purpose": "fine-tune"}
    with pytest.raises(GroundglassError) as caught:
        service.create_job(
            WHO,
            model="toy-world",
            training_file=f,
            training_file_id="file_x",
            method=method,
            suffix=None,
            seed=None,
            metadata=None,
        )
    assert caught.value.status == 400 and caught.value.param == param and words in caught.value.message
    with pytest.raises(GroundglassError) as unknown:
        service.create_job(
            WHO,
            model="sd-xxl",
            training_file=f,
            training_file_id="file_x",
            method=None,
            suffix=None,
            seed=None,
            metadata=None,
        )
    assert unknown.value.status == 404 and "toy-world" in str(unknown.value)


def test_the_old_name_steps_is_read_for_one_release(service: FineTuning) -> None:
    """``hyperparameters.steps`` (optimizer steps) was renamed ``train_steps``, since ``steps`` counts
    denoising steps everywhere else: still read, logged as deprecated, a 400 naming both when both
    disagree; a job stored under the old name reads (and runs, and shows) as ``train_steps``."""
    from sqlalchemy import update
    from structlog.testing import capture_logs

    from groundglass.dreambooth.job import Hyperparameters
    from groundglass.server.finetune.api import job_object
    from groundglass.server.finetune.tables import jobs

    old = {k: v for k, v in TOY_HYPERPARAMETERS.items() if k != "train_steps"}
    with capture_logs() as logs:
        job = create_with(service, {**old, "steps": 5})
        same = create(service, steps=6)
    assert job["hyperparameters"]["train_steps"] == 5 and "steps" not in job["hyperparameters"]
    assert same["hyperparameters"]["train_steps"] == 6
    deprecated = [e for e in logs if e["event"] == "deprecated_field"]
    assert len(deprecated) == 2 and deprecated[0]["field"] == "method.dreambooth.hyperparameters.steps"
    assert "send train_steps" in deprecated[0]["fix"]
    with pytest.raises(GroundglassError) as both:
        create(service, steps=7)
    assert both.value.status == 400 and both.value.param == "method.dreambooth.hyperparameters.train_steps"
    assert "train_steps (6)" in both.value.message and "steps, its old name (7)" in both.value.message

    stored = {k: v for k, v in job["hyperparameters"].items() if k != "train_steps"}
    with service.store.engine.begin() as conn:
        values = {"hyperparameters_json": json.dumps({**stored, "steps": 5})}
        conn.execute(update(jobs).where(jobs.c.id == job["id"]).values(**values))
    read = service.store.get_job(WHO, job["id"])
    assert read is not None and read["hyperparameters"] == job["hyperparameters"]
    assert Hyperparameters.model_validate(read["hyperparameters"]).train_steps == 5  # as the worker reads it
    shown = job_object(read)["method"]["dreambooth"]["hyperparameters"]
    assert shown["train_steps"] == 5 and "steps" not in shown


def wait_until(check: Any, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_clean_shutdown_hands_the_job_back_and_the_next_worker_resumes_it_exactly(
    service: FineTuning,
) -> None:
    stopped = create(service, sample_every=0)
    straight = create(service, sample_every=0)
    first = FineTuneWorker(service, poll_s=0.2)
    first.start()
    wait_until(lambda: any(e["kind"] == "step" for e in service.store.list_events(stopped["id"], limit=3)))
    first.stop()  # what a server's shutdown does: stop after this step, keep the job for later
    left = service.store.get_job(WHO, stopped["id"])
    assert left is not None and left["status"] == "running" and left["lease_until"] == 0.0
    assert service.store.get_job(WHO, straight["id"])["status"] == "queued"  # type: ignore[index]
    (kept,) = service.checkpoints(left)
    at = kept["step_number"]
    assert 1 <= at < 6

    second = FineTuneWorker(service, poll_s=0.2)
    second.start()
    try:
        wait_until(
            lambda: all(
                service.store.get_job(WHO, j["id"])["status"] == "succeeded"  # type: ignore[index]
                for j in (stopped, straight)
            )
        )
    finally:
        second.stop()
    messages = [e["message"] for e in service.store.list_events(stopped["id"], limit=1000)]
    assert f"Training resumed at step {at} (6 steps)" in messages
    resumed, reference = service.store.loss_curve(stopped["id"]), service.store.loss_curve(straight["id"])
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6] and resumed == reference


def test_a_job_whose_photos_are_gone_fails_with_the_reason(service: FineTuning) -> None:
    job = create(service)
    with service.engine.begin() as conn:
        conn.execute(db.files.delete().where(db.files.c.id == job["training_file"]))
    run_next(service, FineTuneWorker(service))
    failed = service.store.get_job(WHO, job["id"])
    assert failed is not None and failed["status"] == "failed"
    assert failed["error"]["code"] == "file_not_found" and "was deleted" in failed["error"]["message"]
    (last,) = service.store.list_events(job["id"], limit=1)
    assert last["kind"] == "failed" and last["level"] == "error"


def test_the_lora_preset_trains_adapters_and_exports_them(service: FineTuning) -> None:
    job = create(
        service,
        preset="lora",
        learning_rate=1e-3,
        train_steps=2,
        checkpoint_every=2,
        sample_every=0,
        prior_loss_weight=0.0,
        class_prompt=None,
    )
    assert job["hyperparameters"]["preset"] == "lora"
    run_next(service, FineTuneWorker(service))
    done = service.store.get_job(WHO, job["id"])
    assert done is not None and done["status"] == "succeeded", done["error"] if done else None
    phases = [
        json.loads(e["data_json"])["phase"]
        for e in reversed(service.store.list_events(job["id"], limit=100))
        if e["kind"] == "phase"
    ]
    assert phases == ["training", "export"]  # no prior preservation: no class images to draw
    lora, name = service.export(WHO, done, "lora")
    assert name.endswith("-lora.safetensors") and lora.stat().st_size > 0
    from safetensors import safe_open

    with safe_open(str(lora), "pt") as tensors:
        names = list(tensors.keys())
    assert any("lora" in name for name in names)
    kohya, name = service.export(WHO, done, "lora-kohya")  # the file A1111 and ComfyUI load
    assert name.endswith("-lora-kohya.safetensors")
    with safe_open(str(kohya), "pt") as tensors:
        names, meta = list(tensors.keys()), tensors.metadata()
    assert names and all(n.startswith(("lora_unet_", "lora_te_")) for n in names)
    assert meta["ss_steps"] == "2" and meta["ss_network_module"] == "networks.lora"
    single, _ = service.export(WHO, done, "single-file")  # the adapters merged into full weights
    assert single.stat().st_size > lora.stat().st_size
    with pytest.raises(GroundglassError, match="unknown export format"):
        service.export(WHO, done, "all")


@pytest.fixture
def sdxl_service(tmp_path: Path) -> FineTuning:
    """A service with a tiny random SDXL pipeline configured as the base model ``tiny-sdxl``."""
    import torch

    from groundglass.dreambooth.tiny import build_tiny_sdxl_pipeline

    torch.set_num_threads(1)
    folder = build_tiny_sdxl_pipeline(tmp_path / "tiny-sdxl", seed=0)
    settings = load_settings(
        None,
        home=str(tmp_path / "home"),
        server={
            "job_lease_s": 2.0,
            "finetune_accelerator": "cpu",
            "image_models": {"tiny-sdxl": str(folder)},
        },
    )
    engine = db.get_engine(settings)
    return FineTuning(settings, engine, Ledger(engine), Pricing(settings.server))


def create_on(service: FineTuning, model: str, **hyperparameters: Any) -> dict[str, Any]:
    name, bundled, _ = service.check_upload([(p.name, p.read_bytes()) for p in star_photos()])
    stored = service.store_photos(WHO, name, bundled)
    return service.create_job(
        WHO,
        model=model,
        training_file=service.get_file(WHO, stored["id"]),
        training_file_id=stored["id"],
        method={"type": "dreambooth", "dreambooth": {"hyperparameters": hyperparameters}},
        suffix=None,
        seed=None,
        metadata=None,
    )


def test_an_sdxl_base_model_trains_with_the_sdxl_lora_preset(sdxl_service: FineTuning) -> None:
    from groundglass.dreambooth.family import SDXL
    from groundglass.dreambooth.trained import load_trained

    quick = {"train_steps": 2, "checkpoint_every": 2, "prior_loss_weight": 0.0, "learning_rate": 1e-3}
    job = create_on(sdxl_service, "tiny-sdxl", instance_prompt="a photo of sks dog", **quick)
    assert job["hyperparameters"]["preset"] == "sdxl_lora"  # no preset given: the family's LoRA preset
    run_next(sdxl_service, FineTuneWorker(sdxl_service))
    done = sdxl_service.store.get_job(WHO, job["id"])
    assert done is not None and done["status"] == "succeeded", done["error"] if done else None
    config = yaml.safe_load((sdxl_service.job_dir(job["id"]) / "fit.yaml").read_text(encoding="utf-8"))
    model = config["model"]
    assert model["lora"] == {"rank": 32, "alpha": 32} and model["gradient_checkpointing"] is True
    assert model["optimizer"] == "adamw8bit"  # AdamW on this CPU, as the fit config documents
    components, _ = load_trained(sdxl_service.job_dir(job["id"]) / "run" / "checkpoints" / "last.ckpt")
    assert components.family is SDXL
    assert any("lora" in name for name, _ in components.unet.named_parameters())


@pytest.mark.parametrize(
    ("model", "preset", "words"),
    [
        (
            "tiny-sdxl",
            "lora",
            "preset 'lora' trains Stable Diffusion 1.x/2.x models, but the base model 'tiny-sdxl' is SDXL",
        ),
        (
            "toy-world",
            "sdxl_lora",
            "preset 'sdxl_lora' trains SDXL models, but the base model 'toy-world' is Stable Diffusion 1.x",
        ),
        ("toy-world", "sdxl_unet", "is Stable Diffusion 1.x"),
    ],
)
def test_a_preset_of_another_family_than_the_base_model_is_refused(
    sdxl_service: FineTuning, model: str, preset: str, words: str
) -> None:
    with pytest.raises(GroundglassError) as caught:
        create_on(sdxl_service, model, preset=preset, prior_loss_weight=0.0)
    error = caught.value
    assert error.status == 400 and error.param == "method.dreambooth.hyperparameters.preset"
    assert words in error.message, error.message
    assert sdxl_service.store.list_jobs(WHO, limit=10, after=None) == []  # nothing was queued
