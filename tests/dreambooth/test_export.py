"""Export: diffusers folder, original-layout single file (reloaded by diffusers), LoRA, pickle refusal."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from groundglass.cli import main
from groundglass.dreambooth.export import export_model, parse_formats
from groundglass.dreambooth.model import LoraSettings, attach_lora, load_components
from groundglass.dreambooth.model_source import open_model
from groundglass.errors import GroundglassError


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUNDGLASS_HOME", str(tmp_path / "home"))


@pytest.fixture
def components(tiny_pipeline_dir: Path):
    return load_components(str(tiny_pipeline_dir), local_files_only=True)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_weights(module: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    got = module.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key].to(value.dtype), value), key


def unet_out(unet: torch.nn.Module) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 16, 16, generator=gen)
    context = torch.randn(1, 77, 32, generator=gen)
    with torch.no_grad():
        return unet(latents, torch.tensor(300), encoder_hidden_states=context).sample


def text_out(text_encoder: torch.nn.Module, tokenizer) -> torch.Tensor:
    ids = tokenizer(
        ["a photo of sks dog"], padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        return text_encoder(ids)[0]


def load_single_file(path: Path, config: Path):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_single_file(
        str(path),
        config=str(config),
        local_files_only=True,
        safety_checker=None,
        requires_safety_checker=False,
    )


def test_diffusers_folder_and_single_file_reload_with_the_same_weights(
    components, tiny_pipeline_dir: Path, tmp_path: Path
) -> None:
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    expected = {name: snapshot(getattr(components, name)) for name in ("unet", "vae", "text_encoder")}
    out = tmp_path / "sks-dog"
    written = export_model(components, out, formats=parse_formats("all"))
    assert written == {
        "diffusers": out,
        "single-file": out / "sks-dog.safetensors",
    }  # no adapters: no LoRA file
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.ckpt"))

    pipe = StableDiffusionPipeline.from_pretrained(out, local_files_only=True)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    for name, weights in expected.items():
        assert_same_weights(getattr(pipe, name), weights)

    with safe_open(str(written["single-file"]), "pt") as f:
        keys = list(f.keys())
        metadata = f.metadata()
    prefixes = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.")
    assert all(k.startswith(prefixes) for k in keys)
    assert {p: sum(k.startswith(p) for k in keys) for p in prefixes} == {
        prefixes[0]: len(expected["unet"]),
        prefixes[1]: len(expected["vae"]),
        prefixes[2]: len(expected["text_encoder"]),
    }
    assert metadata["format"] == "pt" and metadata["modelspec.architecture"] == "stable-diffusion-v1"
    # diffusers' own LDM -> diffusers conversion gives back exactly the original weights.
    single = load_single_file(written["single-file"], config=tiny_pipeline_dir)
    for name, weights in expected.items():
        assert_same_weights(getattr(single, name), weights)


def test_half_precision_export(components, tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    expected = snapshot(components.unet)
    written = export_model(
        components, tmp_path / "half", formats={"single-file", "diffusers"}, half=True, name="dog-fp16"
    )
    with safe_open(str(written["single-file"]), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118
    with safe_open(str(written["diffusers"] / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118
        torch.testing.assert_close(
            f.get_tensor("conv_in.weight").float(), expected["conv_in.weight"], atol=1e-3, rtol=1e-3
        )
    assert written["single-file"].name == "dog-fp16.safetensors"


def test_full_size_sd_layouts_match_what_diffusers_and_a1111_expect() -> None:
    """SD 1.5 and SD 2.1 shaped models (on the meta device: no memory, no weights) map to the known layout."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
        infer_diffusers_model_type,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from groundglass.dreambooth.sd_keys import is_open_clip, to_original

    with torch.device("meta"):
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
        )
        unet1 = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        clip = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12
            )
        )
        unet2 = UNet2DConditionModel(
            sample_size=96,
            cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20),
            use_linear_projection=True,
        )
        open_clip = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=1024,
                intermediate_size=4096,
                num_attention_heads=16,
                num_hidden_layers=23,
                hidden_act="gelu",
            )
        )
    sd1 = to_original(
        unet1.state_dict(),
        unet1.config,
        vae.state_dict(),
        vae.config,
        clip.state_dict(),
        open_clip=is_open_clip(clip.config),
    )
    # The counts of a real v1-5 checkpoint (without its position_ids buffer) and the keys A1111 probes.
    assert sum(k.startswith("model.diffusion_model.") for k in sd1) == 686
    assert sum(k.startswith("first_stage_model.") for k in sd1) == 248
    assert sum(k.startswith("cond_stage_model.transformer.") for k in sd1) == 196
    for key in (
        "model.diffusion_model.output_blocks.11.0.skip_connection.weight",
        "model.diffusion_model.output_blocks.2.1.conv.weight",
        "model.diffusion_model.output_blocks.5.2.conv.weight",
        "model.diffusion_model.input_blocks.3.0.op.weight",
        "model.diffusion_model.middle_block.2.emb_layers.1.weight",
        "first_stage_model.decoder.up.3.upsample.conv.weight",
        "first_stage_model.encoder.down.0.block.1.conv2.weight",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight",
    ):
        assert key in sd1, key
    assert infer_diffusers_model_type(sd1) == "v1"
    assert set(convert_ldm_unet_checkpoint(sd1, unet1.config)) == set(unet1.state_dict())
    assert set(convert_ldm_vae_checkpoint(sd1, vae.config)) == set(vae.state_dict())

    sd2 = to_original(
        unet2.state_dict(),
        unet2.config,
        vae.state_dict(),
        vae.config,
        open_clip.state_dict(),
        open_clip=is_open_clip(open_clip.config),
    )
    assert infer_diffusers_model_type(sd2) == "v2"
    assert sd2["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"].shape == (3072, 1024)
    converted = convert_open_clip_checkpoint(open_clip, sd2)
    assert {
        "text_model." + k if not k.startswith("text_model.") else k for k in open_clip.state_dict()
    } == set(converted)


def test_lora_run_exports_adapters_and_merged_weights(
    components, tiny_pipeline_dir: Path, tmp_path: Path
) -> None:
    from diffusers import StableDiffusionPipeline

    attach_lora(components, LoraSettings(rank=4, alpha=8), text_encoder=True, seed=1)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():  # trained-looking adapters: lora_B is zero at initialisation
        for name, param in [*components.unet.named_parameters(), *components.text_encoder.named_parameters()]:
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    base_unet_out = unet_out(load_components(str(tiny_pipeline_dir), local_files_only=True).unet)
    want_unet, want_text = unet_out(components.unet), text_out(components.text_encoder, components.tokenizer)
    assert not torch.allclose(want_unet, base_unet_out, atol=1e-4)  # the adapters change the output

    out = tmp_path / "lora-run"
    written = export_model(components, out, formats=parse_formats("all"))
    assert set(written) == {"lora", "lora-kohya", "lora-comfyui", "diffusers", "single-file"}
    assert written["lora"] == out / "lora" / "pytorch_lora_weights.safetensors"

    base = StableDiffusionPipeline.from_pretrained(tiny_pipeline_dir, local_files_only=True)
    base.load_lora_weights(out / "lora")
    torch.testing.assert_close(unet_out(base.unet), want_unet, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(text_out(base.text_encoder, base.tokenizer), want_text, atol=1e-5, rtol=1e-4)

    merged = StableDiffusionPipeline.from_pretrained(out, local_files_only=True)
    assert not any("lora" in k for k in merged.unet.state_dict())
    torch.testing.assert_close(unet_out(merged.unet), want_unet, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        text_out(merged.text_encoder, merged.tokenizer), want_text, atol=1e-5, rtol=1e-4
    )
    single = load_single_file(written["single-file"], config=tiny_pipeline_dir)
    torch.testing.assert_close(unet_out(single.unet), want_unet, atol=1e-5, rtol=1e-4)


def test_lora_format_needs_adapters(components, tmp_path: Path) -> None:
    with pytest.raises(GroundglassError, match="no LoRA adapters"):
        export_model(components, tmp_path / "x", formats=parse_formats("lora"))
    with pytest.raises(GroundglassError, match="unknown export format 'ckpt'"):
        parse_formats("ckpt")


class RunsCode:
    """Unpickling this calls Path.touch(marker): stands for any code a pickle can run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickles_from_outside_are_refused_without_running_them(
    tiny_pipeline_dir: Path, tmp_path: Path, capsys
) -> None:
    marker = tmp_path / "code-ran"
    evil_ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": RunsCode(marker)}, evil_ckpt)
    with pytest.raises(GroundglassError, match=r"refusing to load .* would run code when unpickled"):
        open_model(str(evil_ckpt))
    evil_bin = tmp_path / "pytorch_model.bin"
    evil_bin.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(GroundglassError, match="is a pickle file"):
        open_model(str(evil_bin))
    folder = tmp_path / "pickled-model"
    shutil.copytree(tiny_pipeline_dir, folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save({"conv_in.weight": RunsCode(marker)}, folder / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(GroundglassError, match="holds its weights only as pickle"):
        open_model(str(folder))

    with pytest.raises(SystemExit) as exc:
        main(["dreambooth", "export", "--ckpt", str(evil_ckpt), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to load") and "Traceback" not in err
    assert not marker.exists()
    pickle.loads(evil_bin.read_bytes())  # the payload is live: unpickling it does run code
    assert marker.exists()


def test_export_cli_from_a_fit_checkpoint(tiny_pipeline_dir: Path, tmp_path: Path, capsys) -> None:
    """fit (LoRA, 2 steps) -> export --format all -> every output reproduces the trained model."""
    import numpy as np
    from diffusers import StableDiffusionPipeline
    from PIL import Image
    from skimage import data as skdata

    from groundglass.dreambooth.fit import run_fit
    from groundglass.dreambooth.trained import load_trained

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(np.asarray(getattr(skdata, name)())).resize((40, 40)).save(photos / f"{name}.png")
    root = tmp_path / "run"
    assert (
        run_fit(
            [
                "--model.base_model",
                str(tiny_pipeline_dir),
                "--model.local_files_only",
                "true",
                "--model.lora.rank",
                "4",
                "--model.train_text_encoder",
                "true",
                "--model.learning_rate",
                "0.05",
                "--data.instance_data_dir",
                str(photos),
                "--data.instance_prompt",
                "a photo of sks dog",
                "--data.with_prior_preservation",
                "false",
                "--data.resolution",
                "32",
                "--trainer.max_steps",
                "2",
                "--trainer.default_root_dir",
                str(root),
                "--trainer.accelerator",
                "cpu",
                "--trainer.logger",
                "false",
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.enable_model_summary",
                "false",
                "--sampling.at_end",
                "false",
            ]
        )
        == 0
    )
    ckpt = root / "checkpoints" / "last.ckpt"
    trained, _ = load_trained(ckpt)
    want_unet = unet_out(trained.unet)

    out = tmp_path / "export"
    main(["dreambooth", "export", "--ckpt", str(ckpt), "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"lora: {out / 'lora' / 'pytorch_lora_weights.safetensors'}",
        f"lora-kohya: {out / 'lora' / 'export-kohya.safetensors'}",
        f"lora-comfyui: {out / 'lora' / 'export-comfyui.safetensors'}",
        f"diffusers: {out}",
        f"single-file: {out / 'export.safetensors'}",
    ]
    with open(out / "lora" / "pytorch_lora_weights.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert any(k.startswith("text_encoder.") for k in header) and any(k.startswith("unet.") for k in header)
    for fmt in ("pytorch_lora_weights", "export-kohya", "export-comfyui"):  # the run, from its checkpoint
        with safe_open(str(out / "lora" / f"{fmt}.safetensors"), "pt") as f:
            meta = f.metadata()
        assert meta["ss_sd_model_name"] == str(tiny_pipeline_dir) and meta["ss_steps"] == "2", fmt
        assert meta["modelspec.trigger_phrase"] == "sks" and meta["ss_network_dim"] == "4", fmt

    base = StableDiffusionPipeline.from_pretrained(tiny_pipeline_dir, local_files_only=True)
    base.load_lora_weights(out / "lora")
    torch.testing.assert_close(unet_out(base.unet), want_unet, atol=1e-5, rtol=1e-4)
    merged = StableDiffusionPipeline.from_pretrained(out, local_files_only=True)
    torch.testing.assert_close(unet_out(merged.unet), want_unet, atol=1e-5, rtol=1e-4)

    # Sampling the checkpoint and sampling the export give the same image.
    for model, folder in ((ckpt, tmp_path / "from-ckpt"), (out, tmp_path / "from-export")):
        main(
            [
                "dreambooth",
                "sample",
                "--model",
                str(model),
                "--prompt",
                "a photo of sks dog",
                "--steps",
                "2",
                "--seed",
                "3",
                "--out",
                str(folder),
                "--quiet",
            ]
        )
    images = [
        np.asarray(Image.open(tmp_path / f / "a-photo-of-sks-dog-3.png"), dtype=np.int16)
        for f in ("from-ckpt", "from-export")
    ]
    assert np.abs(images[0] - images[1]).max() <= 2
    assert Image.open(tmp_path / "from-ckpt" / "a-photo-of-sks-dog-3.png").text["model"] == str(ckpt)
