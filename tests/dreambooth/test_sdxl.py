"""SDXL DreamBooth on a tiny random SDXL pipeline: both text encoders, the pooled embedding and each
example's size/crop conditioning; class images drawn by the SDXL base; exact resume; export."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from dreambooth_helpers import REPO, base_config, merge, run_in_process, step_losses, write_config
from lightning.pytorch.callbacks import Callback
from safetensors import safe_open

from groundglass.cli import main
from groundglass.dreambooth.data import DreamBoothDataModule
from groundglass.dreambooth.family import SDXL
from groundglass.dreambooth.fit import run_fit
from groundglass.dreambooth.module import DreamBoothModule
from groundglass.dreambooth.trained import load_trained

LORA = {"rank": 4, "alpha": 8}


class CacheReport(Callback):
    """Keeps what the module cached and which parts it held off the training device."""

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.report = dict(pl_module.cache_report)
        self.parts = pl_module.frozen_parts()


def sdxl_config(root: Path, pipeline: Path, instance: Path, classes: Path, overrides: dict[str, Any]) -> dict:
    config = base_config(root, pipeline, instance, classes)
    config["data"].update({"num_class_images": 2, "class_image_generation": {"batch_size": 2, "steps": 2}})
    return merge(config, overrides)


def test_time_ids_are_each_examples_original_size_and_crop(tiny_sdxl_dir: Path, instance_dir: Path) -> None:
    data = DreamBoothDataModule(
        str(instance_dir),
        "a photo of sks cat",
        with_prior_preservation=False,
        resolution=32,
        batch_size=3,
        seed=1,
    )
    data.setup("fit")
    stream = data.stream()
    seen = set()
    for m in range(6):
        batch = stream.batch(m)
        ids = batch["instance_time_ids"]
        assert ids.shape == (3, 6)
        for row in ids.tolist():
            assert row[:2] == [40.0, 48.0]  # the photos' own (height, width) before resizing
            assert row[2] == 0.0 and 0 <= row[3] <= 38 - 32  # resized to 32 x 38: crops move sideways
            assert row[4:] == [32.0, 32.0]
            seen.add(row[3])
    assert len(seen) > 1  # random crops: the UNet is told where each crop came from


def test_sdxl_module_conditions_on_both_encoders_pooled_embedding_and_time_ids(
    tiny_sdxl_dir: Path, instance_dir: Path
) -> None:
    module = DreamBoothModule(str(tiny_sdxl_dir), local_files_only=True, train_text_encoder=True, lora=None)
    assert module.family is SDXL and module.text_encoder_2 is not None
    hidden, pooled = module.encode_conditioning(["a photo of sks cat"])
    assert hidden.shape == (1, 77, 32 + 64) and pooled is not None and pooled.shape == (1, 32)
    data = DreamBoothDataModule(
        str(instance_dir), "a photo of sks cat", with_prior_preservation=False, resolution=32, batch_size=2
    )
    data.setup("fit")
    batch = data.stream().batch(0)
    loss = module.step_losses(batch)["loss"]
    moved = dict(batch, instance_time_ids=batch["instance_time_ids"] + torch.tensor([0, 0, 0, 0, 64, 64]))
    assert not torch.equal(module.step_losses(moved)["loss"], loss)  # the UNet reads the time ids
    loss.backward()
    for name in ("text_encoder", "text_encoder_2"):  # both encoders are in the graph and train
        assert any(p.grad is not None for p in getattr(module, name).parameters()), name
    keys = module.trainable_keys()
    assert any(k.startswith("text_encoder_2.") for k in keys) and any(k.startswith("unet.") for k in keys)


def test_sdxl_lora_fit_draws_its_priors_and_resumes_exactly(
    tmp_path: Path, tiny_sdxl_dir: Path, instance_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4 steps straight == 2 steps, stopped by SIGTERM, then resumed; LoRA on the UNet and both
    text encoders at their own learning rate; random crops of non-square photos."""
    classes = tmp_path / "class-images"  # empty: drawn by the SDXL base before training
    overrides = {
        "model": {
            "lora": LORA,
            "train_text_encoder": True,
            "learning_rate": 1e-3,
            "text_encoder_learning_rate": 1e-4,
        },
        "data": {"center_crop": False, "random_flip": True},
    }
    straight = write_config(
        tmp_path / "straight.yaml",
        sdxl_config(tmp_path / "straight", tiny_sdxl_dir, instance_dir, classes, overrides),
    )
    assert run_in_process(["--config", str(straight)]) == 0
    manifest = (
        json.loads((classes / "manifest.json").read_text()) if (classes / "manifest.json").exists() else {}
    )
    assert len(list(classes.glob("*.png"))) == 2, manifest
    split = write_config(
        tmp_path / "split.yaml",
        sdxl_config(tmp_path / "split", tiny_sdxl_dir, instance_dir, classes, overrides),
    )
    stop = ["--trainer.callbacks+=signal_at_step.SignalAtStep", "--trainer.callbacks.step=2"]
    assert run_in_process(["--config", str(split), *stop]) == 128 + signal.SIGTERM
    assert run_in_process(["--config", str(split), "--ckpt_path", "last"]) == 0
    capsys.readouterr()

    a, b = step_losses(tmp_path / "straight"), step_losses(tmp_path / "split")
    assert len(a) == 4 and a == b  # every step's loss, bit for bit
    assert step_losses(tmp_path / "straight", "train/loss_prior") == step_losses(
        tmp_path / "split", "train/loss_prior"
    )
    end = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    other = torch.load(
        tmp_path / "straight" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    for key, value in end["state_dict"].items():
        assert torch.equal(value, other["state_dict"][key]), key
    assert any(k.startswith("text_encoder_2.") and "lora_B" in k for k in end["state_dict"])
    groups = end["optimizer_states"][0]["param_groups"]
    assert sorted(g["lr"] for g in groups) == [1e-4, 1e-3]

    out = tmp_path / "export"  # the file A1111 and ComfyUI load, with the run in its header
    ckpt = tmp_path / "split" / "checkpoints" / "last.ckpt"
    main(["dreambooth", "export", "--ckpt", str(ckpt), "--out", str(out), "--format", "lora-kohya"])
    assert capsys.readouterr().out.strip() == f"lora-kohya: {out / 'lora' / 'export-kohya.safetensors'}"
    with safe_open(str(out / "lora" / "export-kohya.safetensors"), "pt") as f:
        meta, keys = f.metadata(), list(f.keys())
    assert meta["ss_steps"] == "4" and meta["ss_sd_model_name"] == str(tiny_sdxl_dir)
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0" and meta["modelspec.trigger_phrase"] == "sks"
    assert {k.split("_")[1] for k in keys} == {"unet", "te1", "te2"}


def test_sdxl_full_unet_with_caches_exports_a_folder_and_a_single_file(
    tmp_path: Path,
    tiny_sdxl_dir: Path,
    instance_dir: Path,
    class_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from diffusers import StableDiffusionXLPipeline

    root = tmp_path / "run"
    config = base_config(root, tiny_sdxl_dir, instance_dir, class_dir, steps=2)
    config = merge(
        config,
        {
            "data": {"center_crop": True},
            "checkpoint": {"every_n_train_steps": 2},
            "sampling": {"at_end": True, "steps": 2},  # sampling during training works for SDXL too
        },
    )
    seen = CacheReport()
    assert run_fit(["--config", str(write_config(tmp_path / "run.yaml", config))], callbacks=[seen]) == 0
    capsys.readouterr()
    # every latent and both encoders' outputs encoded once; the VAE and both encoders off the device
    assert seen.report == {
        "latents": ["instance (3 images x 2 flips)", "class (4 images x 2 flips)"],
        "text_embeddings": True,
    }
    assert len(seen.parts) == 3  # VAE, text_encoder, text_encoder_2 held aside, none trained
    assert len(list((root / "samples").rglob("*.png"))) == 1
    ckpt = root / "checkpoints" / "last.ckpt"
    trained, _ = load_trained(ckpt)
    assert trained.family is SDXL
    want = {k: v.clone() for k, v in trained.unet.state_dict().items()}

    out = tmp_path / "export"
    main(["dreambooth", "export", "--ckpt", str(ckpt), "--out", str(out), "--format", "all"])
    printed = capsys.readouterr().out
    assert f"diffusers: {out}" in printed and f"single-file: {out / 'export.safetensors'}" in printed
    assert "lora" not in printed  # full weights trained: no adapters to export

    folder = StableDiffusionXLPipeline.from_pretrained(out, local_files_only=True)
    single = StableDiffusionXLPipeline.from_single_file(
        str(out / "export.safetensors"), config=str(tiny_sdxl_dir), local_files_only=True
    )
    for pipe in (folder, single):
        got = pipe.unet.state_dict()
        assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    with safe_open(str(out / "export.safetensors"), "pt") as f:
        assert f.metadata()["modelspec.architecture"] == "stable-diffusion-xl-v1-base"
        keys = list(f.keys())
    assert any(k.startswith("conditioner.embedders.1.model.transformer.resblocks.") for k in keys)
    assert any(k.startswith("model.diffusion_model.label_emb.0.0.") for k in keys)
    image = folder("a photo of sks cat", num_inference_steps=2, height=32, width=32, output_type="np").images
    assert image.shape == (1, 32, 32, 3)
    drawn = tmp_path / "drawn"
    main(["dreambooth", "sample", "--model", str(ckpt), "--prompt", "a photo of sks cat", "--steps", "2",
          "--out", str(drawn)])  # fmt: skip
    assert len(list(drawn.glob("*.png"))) == 1


def test_full_size_sdxl_single_file_has_the_layout_diffusers_reads() -> None:
    """SDXL base's shapes (on the meta device: no memory) map to the original layout diffusers' own
    converters recognise as SDXL base and convert back to every weight's name."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
        infer_diffusers_model_type,
    )

    from groundglass.dreambooth.arch import arch_configs, build_modules
    from groundglass.dreambooth.sd_keys import sdxl_to_original

    with torch.device("meta"):
        parts = build_modules(arch_configs("sdxl"))
    unet, vae, clip, open_clip = (parts[k] for k in ("unet", "vae", "text_encoder", "text_encoder_2"))
    sd = sdxl_to_original(
        unet.state_dict(),
        unet.config,
        vae.state_dict(),
        vae.config,
        clip.state_dict(),
        open_clip.state_dict(),
    )
    assert infer_diffusers_model_type(sd) == "xl_base"
    assert set(convert_ldm_unet_checkpoint(sd, unet.config)) == set(unet.state_dict())
    assert set(convert_ldm_vae_checkpoint(sd, vae.config)) == set(vae.state_dict())
    converted = convert_open_clip_checkpoint(open_clip, sd, prefix="conditioner.embedders.1.model.")
    assert set(converted) == set(open_clip.state_dict())
    assert sd["conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight"].shape == (
        3840,
        1280,
    )
    assert sd["model.diffusion_model.label_emb.0.0.weight"].shape == (1280, 2816)
    assert "model.diffusion_model.input_blocks.8.1.transformer_blocks.9.attn2.to_k.weight" in sd


def test_sdxl_vae_encodes_outside_float16_autocast(tiny_sdxl_dir: Path, tiny_pipeline_dir: Path) -> None:
    """SDXL's own VAE overflows in float16, so it encodes in float32 under any autocast; SD's does not."""
    from groundglass.dreambooth.cache import latent_moments
    from groundglass.dreambooth.model import load_vae

    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for folder, upcast in ((tiny_sdxl_dir, True), (tiny_pipeline_dir, False)):
        vae = load_vae(str(folder)).eval()
        with torch.no_grad():
            plain = latent_moments(vae, pixels)
            with torch.autocast("cpu", dtype=torch.float16):
                mixed = latent_moments(vae, pixels)
        assert torch.equal(mixed, plain) == upcast, folder


@pytest.mark.parametrize("negative_prompt", [None, "blue"])
def test_sdxl_sampling_matches_the_diffusers_pipeline(
    tiny_sdxl_dir: Path, negative_prompt: str | None
) -> None:
    """Batched CFG with both encoders, the pooled embedding and size conditioning draws what
    StableDiffusionXLPipeline draws (no negative prompt: zeros, as SDXL base's pipeline config asks)."""
    import numpy as np
    from diffusers import StableDiffusionXLPipeline

    from groundglass.dreambooth.model import load_components
    from groundglass.dreambooth.sample import generate, make_scheduler

    comps = load_components(str(tiny_sdxl_dir), local_files_only=True)
    prompts, seeds = ["a photo of sks dog", "a red cat"], [3, 4]
    ours = generate(
        comps,
        prompts,
        negative_prompt=negative_prompt,
        seeds=seeds,
        steps=2,
        guidance_scale=5.0,
        batch_size=2,
    )
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir, local_files_only=True)
    pipe.scheduler = make_scheduler("ddim", comps.noise_scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe(
        prompts,
        negative_prompt=None if negative_prompt is None else [negative_prompt] * 2,
        num_inference_steps=2,
        guidance_scale=5.0,
        height=32,
        width=32,
        generator=[torch.Generator().manual_seed(s) for s in seeds],
    ).images
    for a, b in zip(ours, ref, strict=True):
        assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1


def test_the_sdxl_lora_config_parses(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    assert (
        run_in_process(["--config", str(REPO / "configs/dreambooth/sdxl_lora.yaml"), "--print_config"]) == 0
    )
    config = yaml.safe_load(capsys.readouterr().out)
    model, data = config["model"], config["data"]
    assert model["base_model"] == "stabilityai/stable-diffusion-xl-base-1.0" and model["lora"]["rank"] == 32
    assert model["gradient_checkpointing"] and model["optimizer"] == "adamw8bit"
    assert (
        data["resolution"] == 1024 and data["center_crop"] and config["trainer"]["precision"] == "bf16-mixed"
    )
