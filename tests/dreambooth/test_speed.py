"""Speed and memory: cached latents and text embeddings, frozen parts off the device, fast kernels, no
host syncs between logging steps, and ``groundglass dreambooth bench``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from dreambooth_helpers import run_in_process, run_subprocess, step_losses
from torch.utils._python_dispatch import TorchDispatchMode

from groundglass.dreambooth.data import (
    DreamBoothDataModule,
    DreamBoothStream,
    ImageSet,
    cache_views,
    load_image,
)
from groundglass.dreambooth.module import DreamBoothModule, EmaSettings

CENTRE = {"data": {"center_crop": True, "random_flip": True, "batch_size": 2}}


def test_cache_entries_follow_the_stream_s_images_and_flips(instance_dir: Path, class_dir: Path) -> None:
    """A cache entry per image and flip state serves exactly the example the pixel stream would."""
    instances = ImageSet(
        [load_image(p, 32) for p in sorted(instance_dir.glob("*.png"))], "a photo of sks cat"
    )
    classes = ImageSet([load_image(p, 32) for p in sorted(class_dir.glob("*.png"))], "a photo of a cat")
    settings: dict[str, Any] = {
        "resolution": 32,
        "batch_size": 2,
        "seed": 3,
        "center_crop": True,
        "random_flip": True,
    }
    plain = DreamBoothStream(instances, classes, **settings)
    # Cache "latents" that are the views themselves: the stream must pick the view it would have cropped.
    views = {
        kind: cache_views(s.images, 32, random_flip=True)
        for kind, s in (("instance", instances), ("class", classes))
    }
    cached = DreamBoothStream(instances, classes, latents=views, **settings)
    flips = set()
    for m in range(8):
        a, b = plain.batch(m), cached.batch(m)
        for kind in ("instance", "class"):
            assert f"{kind}_pixels" not in b and torch.equal(b[f"{kind}_latents"], a[f"{kind}_pixels"])
            assert b[f"{kind}_seeds"] == a[f"{kind}_seeds"]
            for pixels, index in zip(a[f"{kind}_pixels"], a[f"{kind}_indices"], strict=True):
                flips.add(torch.equal(pixels, views[kind][index, 1]))
    assert flips == {True, False}  # both flip states were served


def _fit(make_config, name: str, overrides: dict[str, Any], steps: int = 2) -> Path:
    config = make_config(name, overrides, steps=steps)
    assert run_in_process(["--config", str(config)]) == 0
    return config.parent / name


def test_cached_and_uncached_training_give_the_same_losses(make_config) -> None:
    cached = _fit(make_config, "cached", CENTRE)
    uncached = _fit(
        make_config, "uncached", {**CENTRE, "model": {"cache_latents": False, "cache_text_embeddings": False}}
    )
    for key in ("train/loss", "train/loss_instance", "train/loss_prior"):
        a, b = step_losses(cached, key), step_losses(uncached, key)
        assert sorted(a) == sorted(b) == [0, 1]
        assert a[0] == pytest.approx(b[0], rel=1e-6, abs=1e-7), key  # step 1: same data, seed, weights
        assert a[1] == pytest.approx(b[1], rel=1e-4), key
    # The losses are not trivially equal: another seed gives other numbers.
    other = _fit(make_config, "other-seed", {**CENTRE, "model": {"seed": 1}})
    assert step_losses(other)[0] != pytest.approx(step_losses(cached)[0], rel=1e-3)


def test_cache_latents_refuses_random_crops(make_config, capsys: pytest.CaptureFixture[str]) -> None:
    # The instance photos are 48x40: random crops of them differ, so their latents cannot be cached.
    config = make_config("random-crops", {"model": {"cache_latents": True}, "data": {"center_crop": False}})
    assert run_in_process(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "model.cache_latents: true" in err and "instance images are randomly cropped" in err
    assert "data.center_crop: true" in err and "Traceback" not in err


class _EncoderCalls(pl.Callback):
    """Counts VAE encoder and text encoder calls made during training steps (not while caching)."""

    def __init__(self, module: DreamBoothModule) -> None:
        self.calls = {"vae": 0, "text_encoder": 0}
        self.counting = False
        for name, part in (("vae", module.vae.encoder), ("text_encoder", module.text_encoder)):
            part.register_forward_hook(lambda *_, name=name: self._count(name))

    def _count(self, name: str) -> None:
        if self.counting:
            self.calls[name] += 1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.counting = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.counting = False


def _train(
    tiny_pipeline_dir: Path,
    instance_dir: Path,
    class_dir: Path,
    *,
    steps: int = 2,
    callbacks: list[pl.Callback] | None = None,
    trainer_args: dict[str, Any] | None = None,
    **model_args: Any,
) -> tuple[DreamBoothModule, DreamBoothDataModule, list[pl.Callback]]:
    module = DreamBoothModule(str(tiny_pipeline_dir), local_files_only=True, learning_rate=1e-3, **model_args)
    data = DreamBoothDataModule(
        str(instance_dir),
        "a photo of sks cat",
        class_prompt="a photo of a cat",
        class_data_dir=str(class_dir),
        num_class_images=4,
        resolution=32,
        center_crop=True,
    )
    callbacks = [_EncoderCalls(module), *(callbacks or [])]
    args = {
        "max_steps": steps,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **(trainer_args or {}),
    }
    pl.Trainer(callbacks=callbacks, **args).fit(module, datamodule=data)
    return module, data, callbacks


def test_frozen_parts_stay_off_the_device_when_their_outputs_are_cached(
    tiny_pipeline_dir: Path, instance_dir: Path, class_dir: Path
) -> None:
    module, data, (calls, *_) = _train(tiny_pipeline_dir, instance_dir, class_dir)
    # No VAE or text-encoder call in any training step: the stream serves latents, the prompts are cached.
    assert calls.calls == {"vae": 0, "text_encoder": 0}
    assert set(data.latent_cache) == {"instance", "class"}
    assert tuple(data.latent_cache["instance"].shape[:3]) == (3, 2, 2)  # images x flips x (mean, std)
    batch = next(iter(data.stream()))
    assert "instance_latents" in batch and "instance_pixels" not in batch
    # Neither part is a registered submodule, so Lightning's move to the training device leaves them
    # where they are: moving the module to another device moves the UNet only.
    children = dict(module.named_children())
    assert "vae" not in children and "text_encoder" not in children
    module.to("meta")
    assert next(module.unet.parameters()).device.type == "meta"
    assert next(module.vae.parameters()).device.type == "cpu"
    assert next(module.text_encoder.parameters()).device.type == "cpu"

    # Caching off: every step runs the VAE and the text encoder again.
    _, data, (calls, *_) = _train(
        tiny_pipeline_dir, instance_dir, class_dir, cache_latents=False, cache_text_embeddings=False
    )
    assert calls.calls["vae"] >= 2 and calls.calls["text_encoder"] >= 2 and not data.latent_cache

    # A trained text encoder is a registered submodule (moved, checkpointed) and is not cached.
    module, _, (calls, *_) = _train(tiny_pipeline_dir, instance_dir, class_dir, train_text_encoder=True)
    assert "text_encoder" in dict(module.named_children())
    assert calls.calls == {"vae": 0, "text_encoder": 2}


def test_fast_kernels_are_used(tiny_pipeline_dir: Path, instance_dir: Path, class_dir: Path) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    module, _, _ = _train(tiny_pipeline_dir, instance_dir, class_dir, steps=1, channels_last=True)
    processors = module.unet.attn_processors
    assert processors and all(type(p) is AttnProcessor2_0 for p in processors.values())
    assert module.text_encoder.config._attn_implementation == "sdpa"
    optimizer = module.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True
    conv = module.unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    # A model saved with the plain matmul attention gets SDPA back when it loads for training.
    from groundglass.dreambooth.model import use_sdpa_attention

    module.unet.set_attn_processor(AttnProcessor())
    assert use_sdpa_attention(module.unet)
    assert all(type(p) is AttnProcessor2_0 for p in module.unet.attn_processors.values())


class _ScalarReads(TorchDispatchMode):
    """Records every read of a tensor value back to the host (``.item()``, ``float(t)``, ``bool(t)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


class _SyncsPerStep(pl.Callback):
    """Host reads during each training batch: the step, the optimizer, and the callbacks before this one
    (the progress bar included). Fetching the next batch (CPU-side data work) is outside the window."""

    def __init__(self) -> None:
        self.mode: _ScalarReads | None = None
        self.per_step: dict[int, int] = {}

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.mode = _ScalarReads()
        self.mode.__enter__()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        assert self.mode is not None
        self.mode.__exit__(None, None, None)
        self.per_step[trainer.global_step] = self.mode.count
        self.mode = None


def test_no_host_reads_between_logging_steps(
    tiny_pipeline_dir: Path, instance_dir: Path, class_dir: Path
) -> None:
    from groundglass.dreambooth.callbacks import StepProgressBar, TrainingMonitor

    syncs = _SyncsPerStep()
    _train(
        tiny_pipeline_dir,
        instance_dir,
        class_dir,
        steps=6,
        ema=EmaSettings(decay=0.99),
        callbacks=[TrainingMonitor(), StepProgressBar(), syncs],
        trainer_args={"log_every_n_steps": 3, "enable_progress_bar": True, "gradient_clip_val": 1.0},
    )
    # Steps 3 and 6 write logs (and show the loss); no other step reads a value back from the device.
    assert sorted(syncs.per_step) == [1, 2, 3, 4, 5, 6]
    assert {step: n for step, n in syncs.per_step.items() if step not in (3, 6)} == {1: 0, 2: 0, 4: 0, 5: 0}
    assert syncs.per_step[3] > 0  # the detector does see the logging step's read (the progress bar's loss)


def test_bench_command_prints_both_rows_and_the_ratio(make_config, tmp_path: Path) -> None:
    config = make_config("bench", {"data": {"resolution": 32}})
    result = run_subprocess(
        [
            "dreambooth",
            "bench",
            "--config",
            str(config),
            "--train-steps",
            "2",
            "--warmup-steps",
            "1",
            "--compare",
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    number = r"(\d+\.\d+)"
    # variant, steps/s, s/step, CPU s/step, peak memory
    row = re.compile(
        rf"^(config|naive baseline)\s+{number}\s+{number}\s+{number}\s+([\d,]+) MiB "
        r"\(peak RSS\)",
        re.M,
    )
    rows = {
        m.group(1): (*(float(m.group(i)) for i in (2, 3, 4)), int(m.group(5).replace(",", "")))
        for m in row.finditer(out)
    }
    assert set(rows) == {"config", "naive baseline"}, out
    for steps_per_sec, sec_per_step, cpu_sec_per_step, peak_mib in rows.values():
        assert steps_per_sec > 0 and sec_per_step == pytest.approx(1 / steps_per_sec, rel=0.01)
        assert 0 < cpu_sec_per_step < 5 * sec_per_step and peak_mib > 50
    ratio = re.search(rf"ratio \(config / naive baseline\): {number}x steps/s", out)
    assert ratio and float(ratio.group(1)) == pytest.approx(
        rows["config"][0] / rows["naive baseline"][0], rel=0.01
    )
    assert "class (4 images x 2 flips), text embeddings" in out  # what the config cached
    assert not (tmp_path / "bench" / "checkpoints").exists()  # the bench writes nothing into the run folder

    missing = run_subprocess(["dreambooth", "bench", "--config", str(tmp_path / "nope.yaml")])
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_sd15_architecture_configs_have_sd15_s_sizes(tmp_path: Path) -> None:
    """The shipped SD 1.5 configs (no weights) build models of SD 1.5's exact parameter counts."""
    from groundglass.dreambooth.arch import arch_configs, parameter_counts

    configs = arch_configs("sd15")
    assert configs["unet"]["block_out_channels"] == [320, 640, 1280, 1280]
    assert configs["unet"]["cross_attention_dim"] == configs["text_encoder"]["hidden_size"] == 768
    assert configs["vae"]["latent_channels"] == 4 and configs["text_encoder"]["max_position_embeddings"] == 77
    assert parameter_counts("sd15") == {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}
    with pytest.raises(Exception, match="unknown architecture 'sd9'"):
        arch_configs("sd9")
    # SDXL base 1.0: its UNet (2.57 B), the same VAE shape, CLIP ViT-L and OpenCLIP ViT-bigG with projection
    assert parameter_counts("sdxl") == {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    }
    xl = arch_configs("sdxl")
    assert xl["unet"]["cross_attention_dim"] == 768 + 1280 == 2048
    assert xl["unet"]["projection_class_embeddings_input_dim"] == 1280 + 6 * 256
    assert xl["vae"]["scaling_factor"] == 0.13025
