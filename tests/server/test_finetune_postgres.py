"""The fine-tuning queue on PostgreSQL: one job per device across processes, a job run to its end, its
events and its ledger row in the database."""

from __future__ import annotations

import time
from pathlib import Path

from finetune_helpers import TOY_HYPERPARAMETERS, star_photos
from postgres_server import PostgresServer
from sqlalchemy import select

from groundglass.config import load_settings
from groundglass.server import db
from groundglass.server.auth import Principal
from groundglass.server.finetune.service import FineTuning
from groundglass.server.finetune.worker import FineTuneWorker
from groundglass.server.usage import Ledger, Pricing

WHO = Principal("key_pg", "pg-studio", 60, 100_000)


def test_the_queue_runs_one_job_per_device_and_records_in_postgresql(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    import torch

    torch.set_num_threads(1)
    settings = load_settings(
        None,
        home=str(tmp_path / "home"),
        server={"database_url": postgres.create_database("gg_finetune"), "job_lease_s": 5.0},
    )
    engine = db.get_engine(settings)
    # two services on one database stand for two server processes
    first, second = (FineTuning(settings, engine, Ledger(engine), Pricing(settings.server)) for _ in range(2))
    name, bundled, _ = first.check_upload([(p.name, p.read_bytes()) for p in star_photos()])
    stored = first.store_photos(WHO, name, bundled)
    method = {"type": "dreambooth", "dreambooth": {"hyperparameters": TOY_HYPERPARAMETERS}}
    jobs = [
        first.create_job(
            WHO,
            model="toy-world",
            training_file=second.get_file(WHO, stored["id"]),
            training_file_id=stored["id"],
            method=method,
            suffix=None,
            seed=None,
            metadata=None,
        )
        for _ in range(2)
    ]

    claimed = first.store.claim("box/cpu", "first")
    assert claimed is not None and claimed[0]["id"] == jobs[0]["id"]
    assert second.store.claim("box/cpu", "second") is None  # the device is busy: the queue waits
    other = second.store.claim("box/cuda:0", "second")  # another device takes the next job
    assert other is not None and other[0]["id"] == jobs[1]["id"]
    second.store.release_device("box/cuda:0", other[1])

    job, token = claimed
    try:
        FineTuneWorker(first).run(job, token, "box/cpu")
    finally:
        first.store.release_device("box/cpu", token)
    done = second.store.get_job(WHO, job["id"])
    assert done is not None and done["status"] == "succeeded" and done["trained_steps"] == 6
    assert sorted(second.store.loss_curve(job["id"])) == [1, 2, 3, 4, 5, 6]
    assert [m["id"] for m in second.models(WHO)] == ["toy-world", done["fine_tuned_model"]]
    with engine.connect() as conn:
        (row,) = conn.execute(select(db.usage).where(db.usage.c.request_id == job["id"])).all()
    assert row.training_steps == 6 and row.endpoint == "/v1/fine_tuning/jobs"
    # nobody heartbeats the job claimed on cuda:0: once its lease is over, another worker takes it over
    held = second.store.get_job(WHO, jobs[1]["id"])
    assert held is not None and held["status"] == "running"
    time.sleep(max(0.0, held["lease_until"] - time.time()) + 0.1)
    again = first.store.claim("box/cpu", "first")
    assert again is not None and again[0]["id"] == jobs[1]["id"] and again[0]["attempts"] == 2
