"""Checkpoints and resume: exact resume, signals, a full disk, and checkpoints of other runs."""

from __future__ import annotations

import resource
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
from dreambooth_helpers import GROUNDGLASS, REPO, run_in_process, run_subprocess, step_losses

from groundglass.dreambooth.trained import load_trained

RESUME_SETTINGS = {
    "trainer": {"accumulate_grad_batches": 2},
    "model": {"ema": {"decay": 0.99}, "lr_scheduler": "linear", "lr_warmup_steps": 2},
    "data": {"batch_size": 1, "random_flip": True, "center_crop": False},
    "checkpoint": {"every_n_train_steps": 2},
}


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resume_is_exact(tmp_path: Path, make_config, capsys: pytest.CaptureFixture[str]) -> None:
    """6 steps straight == 3 steps, stopped by SIGTERM, then resumed with --ckpt_path last."""
    straight = make_config("straight", RESUME_SETTINGS, steps=6)
    assert run_in_process(["--config", str(straight)]) == 0

    split = make_config("split", RESUME_SETTINGS, steps=6)
    stop_at_3 = ["--trainer.callbacks+=signal_at_step.SignalAtStep", "--trainer.callbacks.step=3"]
    assert run_in_process(["--config", str(split), *stop_at_3]) == 128 + signal.SIGTERM
    assert "stopped by SIGTERM at step 3" in capsys.readouterr().err
    first_half = _load(tmp_path / "split" / "checkpoints" / "last.ckpt")
    assert first_half["global_step"] == 3
    assert run_in_process(["--config", str(split), "--ckpt_path", "last"]) == 0

    a, b = step_losses(tmp_path / "straight"), step_losses(tmp_path / "split")
    assert len(a) == 6 and a == b  # every step's loss, bit for bit
    for key in ("train/loss_instance", "train/loss_prior", "train/lr"):
        assert step_losses(tmp_path / "straight", key) == step_losses(tmp_path / "split", key)
    end_a = _load(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    end_b = _load(tmp_path / "split" / "checkpoints" / "last.ckpt")
    assert end_a["global_step"] == end_b["global_step"] == 6
    assert end_a["state_dict"].keys() == end_b["state_dict"].keys()
    for key, value in end_a["state_dict"].items():
        assert torch.equal(value, end_b["state_dict"][key]), key
    ema_a, ema_b = end_a["groundglass"]["ema"], end_b["groundglass"]["ema"]
    for x, y in zip(ema_a["shadow_params"], ema_b["shadow_params"], strict=True):
        assert torch.equal(x, y)
    # The weights did move, and the EMA lags behind them.
    key = "unet.conv_in.weight"
    assert not torch.equal(first_half["state_dict"][key], end_a["state_dict"][key])
    ema_index = end_a["groundglass"]["trainable_keys"].index(key)
    assert not torch.equal(ema_a["shadow_params"][ema_index], end_a["state_dict"][key])
    # load_trained applies the EMA weights unless told not to.
    with_ema, info = load_trained(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    assert info["ema_applied"]
    assert torch.equal(with_ema.unet.conv_in.weight, ema_a["shadow_params"][ema_index])
    raw, info = load_trained(tmp_path / "straight" / "checkpoints" / "last.ckpt", use_ema=False)
    assert not info["ema_applied"] and torch.equal(raw.unet.conv_in.weight, end_a["state_dict"][key])


def test_resume_from_another_run_or_base_model_is_refused(
    tmp_path: Path, make_config, tiny_pipeline_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config("first", {"checkpoint": {"every_n_train_steps": 1}}, steps=1)
    assert run_in_process(["--config", str(config)]) == 0
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    capsys.readouterr()

    other_prompt = make_config("second", {"data": {"instance_prompt": "a picture of sks toy"}}, steps=2)
    assert run_in_process(["--config", str(other_prompt), "--ckpt_path", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint belongs to a different run" in err and "instance_prompt" in err
    assert "Traceback" not in err

    copy = tmp_path / "other-base"
    shutil.copytree(tiny_pipeline_dir, copy)
    other_base = make_config("third", {"model": {"base_model": str(copy)}}, steps=2)
    assert run_in_process(["--config", str(other_base), "--ckpt_path", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "trained from base model" in err and str(copy) in err and "Traceback" not in err

    lora = make_config("fourth", {"model": {"lora": {"rank": 2}}}, steps=2)
    assert run_in_process(["--config", str(lora), "--ckpt_path", str(ckpt)]) == 2
    assert "different run" in capsys.readouterr().err

    assert run_in_process(["--config", str(config), "--ckpt_path", str(tmp_path / "missing.ckpt")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big write fails with EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_ctrl_c_saves_a_checkpoint_and_a_full_disk_keeps_the_previous_one(
    tmp_path: Path, make_config
) -> None:
    """Ctrl+C (SIGINT from outside) finishes the step and saves; SIGTERM is tested in test_resume_is_exact."""
    config = make_config("long", {"checkpoint": {"every_n_train_steps": 1}}, steps=10_000)
    ckpt = tmp_path / "long" / "checkpoints" / "last.ckpt"
    proc = run_subprocess_popen(["dreambooth", "fit", "--config", str(config)])
    try:
        deadline = time.monotonic() + 150
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ckpt.exists(), proc.communicate()[1][-3000:] if proc.poll() is not None else "no checkpoint"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "received SIGINT" in err and "stopped by SIGINT at step" in err and "Traceback" not in err
    saved = _load(ckpt)
    stopped_at = saved["global_step"]
    assert stopped_at >= 1 and f"at step {stopped_at};" in err

    # Resume with too little room for a checkpoint: a clear error, and the old last.ckpt still loads.
    before = ckpt.read_bytes()
    limit = ckpt.stat().st_size // 4
    result = run_subprocess(
        [
            "dreambooth",
            "fit",
            "--config",
            str(config),
            "--ckpt_path",
            "last",
            "--trainer.max_steps",
            str(stopped_at + 1),
        ],
        preexec_fn=_limit_file_size(limit),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "out of disk space while saving checkpoint" in result.stderr
    assert "previous checkpoint is kept" in result.stderr and "Traceback" not in result.stderr
    assert ckpt.read_bytes() == before and _load(ckpt)["global_step"] == stopped_at
    assert not list(ckpt.parent.glob(".*tmp*"))  # no temporary file left behind


def run_subprocess_popen(args: list[str]):
    import os
    import subprocess

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen(
        [str(GROUNDGLASS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
