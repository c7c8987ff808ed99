"""The fine-tuning tables: jobs (the queue), their events, and the devices jobs hold.

They live in the server database's one schema (:data:`groundglass.server.db.metadata`), so the same
SQLite file or PostgreSQL database holds keys, the ledger and the fine-tuning queue; several server
processes share the queue through it.
"""

from __future__ import annotations

from sqlalchemy import Column, Engine, Float, Index, Integer, String, Table, Text

from groundglass.server import db

jobs = Table(
    "finetune_jobs",
    db.metadata,
    Column("id", String(40), primary_key=True),  # "ftjob-..."
    Column("key_id", String(40), nullable=False),
    Column("project", String(200), nullable=False),
    Column("model", String(200), nullable=False),  # the base model's API name
    Column("training_file", String(40), nullable=False),
    Column("suffix", String(64), nullable=True),
    Column("hyperparameters_json", Text, nullable=False),  # validated, with every default filled in
    Column("metadata_json", Text, nullable=True),
    Column("status", String(20), nullable=False),  # queued|running|succeeded|failed|cancelled
    Column("cancel_requested", Integer, nullable=False, default=0),
    Column("fine_tuned_model", String(400), nullable=True),
    Column("error_json", Text, nullable=True),
    Column("claimed_by", String(200), nullable=True),  # the claim token of the worker running it
    Column("lease_until", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("device", String(200), nullable=True),
    Column("trained_steps", Integer, nullable=False, default=0),
    Column("device_seconds", Float, nullable=False, default=0.0),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("estimated_finish", Float, nullable=True),
    Index("ix_finetune_jobs_project", "project", "created_at"),
    Index("ix_finetune_jobs_status", "status"),
)

events = Table(
    "finetune_events",
    db.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(40), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("level", String(10), nullable=False),  # info|warn|error
    Column("type", String(10), nullable=False),  # message|metrics (OpenAI's event types)
    Column("kind", String(20), nullable=False),  # queued|phase|start|step|checkpoint|samples|...
    Column("step", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Column("data_json", Text, nullable=True),
    Index("ix_finetune_events_job", "job_id", "id"),
)

devices = Table(
    "finetune_devices",
    db.metadata,
    Column("name", String(200), primary_key=True),  # "<host>/<device>", e.g. "gpu-box/cuda:0"
    Column("holder", String(200), nullable=True),  # the claim token of the job on it
    Column("lease_until", Float, nullable=True),
)


def create(engine: Engine) -> None:
    """Create the tables where missing (a database made before fine-tuning existed has none)."""
    db.metadata.create_all(engine, tables=[jobs, events, devices], checkfirst=True)
