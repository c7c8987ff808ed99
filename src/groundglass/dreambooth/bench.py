"""``groundglass dreambooth bench``: training speed and peak memory of a fit config, and of a naive baseline.

A measurement runs the real ``fit`` path (LightningCLI, the data module, the trainer, the config's own
settings) for ``warmup + steps`` optimizer steps, with loggers, checkpoints and sample images switched
off and everything written to a temporary folder. The clock starts after ``warmup`` steps (lazy
initialisation, allocator warm-up, kernel autotuning and compilation happen there) and stops after the
last one; on CUDA both ends wait for the device. Peak memory is the CUDA peak allocated during the
timed steps on a GPU, and the process's peak RSS on the CPU. The process's CPU time over the timed
steps is recorded too: on a CPU shared with other work, steps per CPU-second are what the run would
reach on an idle machine (with one intra-op thread), where wall-clock steps/s swing with the load.

Each variant runs in a fresh Python process (``python -m groundglass.dreambooth.bench``), so the peak
RSS, the CUDA allocator and the warm caches of one never leak into the other.

The naive baseline (``--compare``) is the same config (same model, data, resolution, batch size,
precision, gradient checkpointing, what trains) trained the straightforward way:

- no caching: every step encodes its images with the VAE and its prompts with the text encoder,
  which both stay on the training device;
- instance and class (prior) examples go through the VAE, the text encoder and the UNet in two
  separate forward passes;
- torch's default AdamW (the per-tensor loop on the CPU, foreach on CUDA), no channels_last, no
  torch.compile.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from groundglass.errors import GroundglassError

VARIANTS = ("config", "naive")
NAIVE_OVERRIDES = (
    "--model.cache_latents",
    "false",
    "--model.cache_text_embeddings",
    "false",
    "--model.channels_last",
    "false",
    "--model.compile",
    "false",
)


@dataclasses.dataclass
class BenchResult:
    """One variant's measurement."""

    variant: str
    device: str
    steps: int
    seconds: float
    peak_memory_mb: float
    memory_kind: str
    cached: list[str] = dataclasses.field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def steps_per_sec(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("inf")

    @property
    def sec_per_step(self) -> float:
        return self.seconds / self.steps

    @property
    def cpu_sec_per_step(self) -> float:
        return self.cpu_seconds / self.steps

    @property
    def steps_per_cpu_sec(self) -> float:
        return self.steps / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")


def _naive_module_class() -> type:
    from groundglass.dreambooth.module import DreamBoothModule

    class NaiveDreamBoothModule(DreamBoothModule):
        """The baseline: each kind of example through the VAE, text encoder and UNet on its own."""

        def step_losses(self, batch: dict[str, Any]) -> dict[str, Any]:
            losses = {}
            for kind in self.batch_kinds(batch):
                seeds = list(batch[f"{kind}_seeds"])
                timesteps, eps, noise = self.draw(seeds, self.batch_latent_shape(batch, [kind]))
                latents = self.batch_latents(batch, [kind], eps)
                hidden = self.encode_prompts(list(batch[f"{kind}_prompts"]))
                losses[kind] = self.diffusion_loss(latents, hidden, timesteps, noise, len(seeds))["loss"]
            out = {"loss_instance": losses["instance"], "loss": losses["instance"]}
            if "class" in losses:
                out["loss_prior"] = losses["class"]
                out["loss"] = losses["instance"] + self.hparams.prior_loss_weight * losses["class"]
            return out

        def adamw_kernel(self, params: list[Any]) -> dict[str, bool]:
            return {}  # torch's default choice

    return NaiveDreamBoothModule


def _timer_callback(warmup: int) -> Any:
    import torch
    from lightning.pytorch.callbacks import Callback

    from groundglass.dreambooth.callbacks import peak_memory_mb

    class BenchTimer(Callback):
        """Times the optimizer steps after ``warmup`` of them; reads the peak memory at the end."""

        def __init__(self) -> None:
            self.started: float | None = None
            self.cpu_started = 0.0
            self.cpu_seconds = 0.0
            self.start_step = 0
            self.seconds = 0.0
            self.steps = 0
            self.peak_mb = 0.0
            self._last = -1

        def _sync(self, device: torch.device) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self._last = trainer.global_step

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            step = trainer.global_step
            if step == self._last:  # mid-accumulation
                return
            self._last = step
            device = pl_module.device
            if step == warmup:
                self._sync(device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                self.started, self.start_step = time.perf_counter(), step
                self.cpu_started = time.process_time()
            elif self.started is not None and step >= trainer.max_steps:
                self._sync(device)
                self.seconds = time.perf_counter() - self.started
                self.cpu_seconds = time.process_time() - self.cpu_started
                self.steps = step - self.start_step
                self.peak_mb = peak_memory_mb(device)

    return BenchTimer()


def _fit_args(config: Path, extra_args: list[str], *, max_steps: int, root: str) -> list[str]:
    """``dreambooth fit`` arguments for a timed run: no logs, checkpoints or samples, in ``root``."""
    return [
        "--config",
        str(config),
        *extra_args,
        "--trainer.max_steps",
        str(max_steps),
        "--trainer.default_root_dir",
        root,
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--checkpoint.dirpath",
        str(Path(root) / "checkpoints"),
        "--checkpoint.save_last",
        "false",
        "--checkpoint.save_top_k",
        "0",
        "--checkpoint.every_n_train_steps",
        "0",
        "--sampling.every_n_steps",
        "0",
        "--sampling.at_end",
        "false",
        "--ckpt_path",
        "null",
    ]


def measure(
    config: Path, variant: str, *, steps: int, warmup: int, extra_args: list[str] | None = None
) -> BenchResult:
    """Train ``config`` for ``warmup + steps`` steps in this process and time the last ``steps``."""
    import logging
    import warnings

    from groundglass.dreambooth.fit import QUIET_WARNINGS, DreamBoothCLI
    from groundglass.dreambooth.module import DreamBoothModule

    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning").propagate = False
    if variant not in VARIANTS:
        raise GroundglassError(f"unknown bench variant {variant!r}", f"use one of {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="groundglass-bench-") as tmp:
        args = _fit_args(config, extra_args or [], max_steps=warmup + steps, root=tmp)
        model_class: type[DreamBoothModule] = DreamBoothModule
        if variant == "naive":
            args += list(NAIVE_OVERRIDES)
            model_class = _naive_module_class()
        cli = DreamBoothCLI(args=args, model_class=model_class)
        timer = _timer_callback(warmup)
        cli.trainer.callbacks.append(timer)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        device = cli.model.device
        if not timer.steps:
            raise GroundglassError(
                f"the {variant} run stopped before its timed steps",
                "check the config trains on its own with `groundglass dreambooth fit`",
            )
        report = getattr(cli.model, "cache_report", {}) or {}
        cached = [*report.get("latents", []), *(["text embeddings"] if report.get("text_embeddings") else [])]
        return BenchResult(
            variant=variant,
            device=str(device),
            steps=timer.steps,
            seconds=timer.seconds,
            peak_memory_mb=timer.peak_mb,
            memory_kind="CUDA peak allocated" if device.type == "cuda" else "peak RSS",
            cached=cached,
            cpu_seconds=timer.cpu_seconds,
        )


def run_variant(
    config: Path,
    variant: str,
    *,
    steps: int,
    warmup: int,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> BenchResult:
    """:func:`measure` in a fresh Python process; its output is shown only when it fails."""
    with tempfile.TemporaryDirectory(prefix="groundglass-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "groundglass.dreambooth.bench",
            "--config",
            str(config),
            "--variant",
            variant,
            "--steps",
            str(steps),
            "--warmup",
            str(warmup),
            "--out",
            str(out),
        ]
        if extra_args:
            cmd += ["--", *extra_args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
        if proc.returncode != 0 or not out.is_file():
            lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
            errors = [ln.removeprefix("error: ") for ln in lines if ln.startswith("error:")]
            if errors:  # the config's own problem, with its fix
                raise GroundglassError(f"bench ({variant}): " + "; ".join(errors))
            detail = "\n".join(lines[-15:])
            raise GroundglassError(
                f"the {variant} run failed (exit {proc.returncode}):\n{detail}",
                "check that the config trains with `groundglass dreambooth fit`",
            )
        return BenchResult(**json.loads(out.read_text(encoding="utf-8")))


def run_bench(
    config: Path,
    *,
    steps: int = 20,
    warmup: int = 3,
    compare: bool = False,
    extra_args: list[str] | None = None,
    progress: bool = True,
) -> list[BenchResult]:
    """Measure the config (and with ``compare`` the naive baseline), each in its own process."""
    config = Path(config).expanduser()
    if not config.is_file():
        raise GroundglassError(f"--config {config}: no such file", "give a fit config (YAML)")
    if steps < 1 or warmup < 1:
        raise GroundglassError(
            f"--train-steps and --warmup-steps must be at least 1 (got {steps} and {warmup})",
            "e.g. --train-steps 20 --warmup-steps 3",
        )
    results = []
    for variant in VARIANTS if compare else VARIANTS[:1]:
        if progress:
            print(
                f"measuring {variant}: {warmup} warm-up + {steps} timed steps ...",
                file=sys.stderr,
                flush=True,
            )
        results.append(run_variant(config, variant, steps=steps, warmup=warmup, extra_args=extra_args))
    return results


def format_results(results: list[BenchResult], *, title: str = "") -> str:
    """A table: steps/s, s/step and peak memory per variant, then the speed and memory ratios.

    On the CPU a column gives the CPU seconds per step as well (see the module docstring)."""
    labels = {"config": "config", "naive": "naive baseline"}
    on_cpu = all(r.memory_kind == "peak RSS" for r in results)
    rows = [("variant", "steps/s", "s/step", *(["CPU s/step"] if on_cpu else []), "peak memory", "cached")]
    for r in results:
        rows.append(
            (
                labels.get(r.variant, r.variant),
                f"{r.steps_per_sec:.3f}",
                f"{r.sec_per_step:.4f}",
                *([f"{r.cpu_sec_per_step:.4f}"] if on_cpu else []),
                f"{r.peak_memory_mb:,.0f} MiB ({r.memory_kind})",
                ", ".join(r.cached) or "-",
            )
        )
    left = {0, len(rows[0]) - 2, len(rows[0]) - 1}
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [title] if title else []
    for row in rows:
        cells = [
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    by_variant = {r.variant: r for r in results}
    if "config" in by_variant and "naive" in by_variant:
        fast, naive = by_variant["config"], by_variant["naive"]
        cpu = (
            f" ({naive.cpu_sec_per_step / fast.cpu_sec_per_step:.2f}x in CPU time)"
            if on_cpu and fast.cpu_seconds > 0
            else ""
        )
        lines.append(
            f"ratio (config / naive baseline): {fast.steps_per_sec / naive.steps_per_sec:.2f}x "
            f"steps/s{cpu}, {fast.peak_memory_mb / naive.peak_memory_mb:.2f}x peak memory"
        )
    return "\n".join(lines)


def _worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m groundglass.dreambooth.bench",
        description="One bench measurement (used by `groundglass dreambooth bench`).",
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--variant", choices=VARIANTS, default="config")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("extra", nargs="*", help="fit overrides after --, e.g. -- --trainer.precision 32")
    args = parser.parse_args(argv)
    try:
        result = measure(
            args.config, args.variant, steps=args.steps, warmup=args.warmup, extra_args=args.extra
        )
    except GroundglassError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(dataclasses.asdict(result)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1:]))
