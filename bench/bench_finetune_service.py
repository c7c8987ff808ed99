"""DreamBooth as a service against ``groundglass dreambooth fit``: optimizer steps per second on one run.

Both sides train the same run: the toy world's base model on its bundled star (32 px, full UNet,
batch 2, prior preservation, a loss read back at every step, as the service records it). The fit
config is the one the service writes for the job (:func:`groundglass.dreambooth.job.fit_config`).

- service: ``groundglass serve`` (a real server, SQLite ledger and queue) gets the photos through
  ``POST /v1/files`` and the job through ``POST /v1/fine_tuning/jobs``; its figure is the last step
  event's ``steps_per_sec`` (from step 1 to the last, so the warm-up step is left out);
- baseline: ``groundglass dreambooth fit --config`` on the same config with :class:`StepClock`, a
  callback that measures the same span the same way and does nothing else.

Sides alternate for ``--rounds`` rounds; it prints each run, the medians and the overhead
(1 - service / baseline). Figures depend on what else runs: on a shared 2-core machine, run it alone.

    .venv/bin/python -m bench.bench_finetune_service [--steps 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the toy model gains nothing from more threads

REPO = Path(__file__).resolve().parents[1]
GROUNDGLASS = str(Path(sys.executable).parent / "groundglass")


class StepClock(Callback):
    """Writes ``{"steps_per_sec": ...}`` to ``out`` at the end: (last - 1) steps over the time from the
    end of step 1 to the end of the last step (what the service's events report)."""

    def __init__(self, out: str) -> None:
        self.out = out
        self._first: tuple[int, float] | None = None
        self._last: tuple[int, float] | None = None
        self._step = -1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self._step:
            return
        self._step = trainer.global_step
        now = time.perf_counter()
        if self._first is None:
            self._first = (trainer.global_step, now)
        self._last = (trainer.global_step, now)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self._first is not None and self._last is not None
        (s0, t0), (s1, t1) = self._first, self._last
        Path(self.out).write_text(json.dumps({"steps_per_sec": (s1 - s0) / (t1 - t0)}))


def hyperparameters(steps: int) -> dict[str, Any]:
    from groundglass.dreambooth.world.subject import CLASS_PROMPT, INSTANCE_PROMPT

    return {
        "preset": "unet",
        "instance_prompt": INSTANCE_PROMPT,
        "class_prompt": CLASS_PROMPT,
        "train_steps": steps,
        "learning_rate": 5e-4,
        "num_class_images": 4,
        "resolution": 32,
        "batch_size": 2,
        "checkpoint_every": steps,
        "sample_every": 0,
        "sample_steps": 5,
        "guidance_scale": 4.0,
    }


def photos_zip() -> bytes:
    from groundglass.dreambooth.world.subject import instance_paths

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path in instance_paths():
            archive.writestr(path.name, path.read_bytes())
    return out.getvalue()


def run_cli(root: Path, steps: int) -> float:
    import yaml

    from groundglass.dreambooth.job import Hyperparameters, fit_config
    from groundglass.dreambooth.world.personalise import base_model_dir
    from groundglass.dreambooth.world.subject import SUBJECT_DIR

    config = fit_config(
        Hyperparameters.model_validate(hyperparameters(steps)),
        base_model=str(base_model_dir()),
        root=root / "run",
        instance_dir=SUBJECT_DIR,
        class_dir=root / "class_images",
        accelerator="cpu",
    )
    clock = root / "clock.json"
    config["trainer"]["callbacks"] = [
        {"class_path": "bench.bench_finetune_service.StepClock", "init_args": {"out": str(clock)}}
    ]
    path = root / "fit.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [GROUNDGLASS, "dreambooth", "fit", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=3600,
    )
    if result.returncode:
        raise SystemExit(f"dreambooth fit failed: {result.stderr[-2000:]}")
    return float(json.loads(clock.read_text())["steps_per_sec"])


def run_service(home: Path, steps: int) -> float:
    import httpx

    from bench.bench_server import serve

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'home = "{home}"\n[server]\nopen = true\nwarm_up = false\nfinetune_accelerator = "cpu"\n',
        encoding="utf-8",
    )
    proc, base = serve(home)
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            f = client.post(
                "/v1/files",
                data={"purpose": "fine-tune"},
                files={"file": ("stars.zip", photos_zip(), "application/zip")},
            ).json()
            body = {
                "model": "toy-world",
                "training_file": f["id"],
                "method": {"type": "dreambooth", "dreambooth": {"hyperparameters": hyperparameters(steps)}},
            }
            job = client.post("/v1/fine_tuning/jobs", json=body).json()
            while job["status"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(1)
                job = client.get(f"/v1/fine_tuning/jobs/{job['id']}").json()
            if job["status"] != "succeeded":
                raise SystemExit(f"the job ended {job['status']}: {job['error']}")
            events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 50}).json()[
                "data"
            ]
            last = next(e for e in events if e["kind"] == "step" and e["step"] == steps)
            return float(last["data"]["steps_per_sec"])
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    fit_runs: list[float] = []
    service_runs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as tmp:
        for r in range(args.rounds):
            order = ("fit", "service") if r % 2 == 0 else ("service", "fit")
            for side in order:
                folder = Path(tmp) / f"{side}-{r}"
                folder.mkdir()
                if side == "fit":
                    fit_runs.append(run_cli(folder, args.steps))
                    print(f"round {r + 1}: dreambooth fit   {fit_runs[-1]:.3f} steps/s", flush=True)
                else:
                    service_runs.append(run_service(folder, args.steps))
                    print(f"round {r + 1}: service (serve) {service_runs[-1]:.3f} steps/s", flush=True)
    fit, service = statistics.median(fit_runs), statistics.median(service_runs)
    print(
        f"\n{args.steps} steps, toy world 32 px, full UNet, batch 2, prior preservation, CPU "
        f"(OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})"
    )
    print(f"baseline `groundglass dreambooth fit`: {fit:.3f} steps/s (median of {len(fit_runs)})")
    print(f"service `groundglass serve` job:      {service:.3f} steps/s (median of {len(service_runs)})")
    print(f"ratio service/fit: {service / fit:.3f}  overhead: {(1 - service / fit) * 100:.1f}%")


if __name__ == "__main__":
    main()
