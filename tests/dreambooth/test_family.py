"""Model families: detected from a diffusers folder or a single file; configs that do not fit are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from dreambooth_helpers import run_in_process
from safetensors.torch import save_file

from groundglass.dreambooth.family import SD1, SD2, SDXL, check_resolution, detect_family
from groundglass.dreambooth.model import load_components
from groundglass.errors import GroundglassError


def test_folders_are_told_apart(tiny_pipeline_dir: Path, tiny_sdxl_dir: Path, tmp_path: Path) -> None:
    assert detect_family(str(tiny_pipeline_dir)) is SD1
    assert detect_family(str(tiny_sdxl_dir)) is SDXL

    sd2 = tmp_path / "sd2"
    shutil.copytree(tiny_pipeline_dir, sd2)
    config = json.loads((sd2 / "text_encoder" / "config.json").read_text())
    (sd2 / "text_encoder" / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu"}))
    assert detect_family(str(sd2)) is SD2  # OpenCLIP's activation

    no_index = tmp_path / "no-index"
    shutil.copytree(tiny_sdxl_dir, no_index)
    (no_index / "model_index.json").unlink()
    assert detect_family(str(no_index)) is SDXL  # from the subfolders

    flux = tmp_path / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text(
        json.dumps({"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]})
    )
    with pytest.raises(GroundglassError, match=r"FluxPipeline .a transformer, not a UNet.") as info:
        detect_family(str(flux))
    assert "SDXL" in info.value.fix

    refiner = tmp_path / "refiner"
    refiner.mkdir()
    (refiner / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionXLImg2ImgPipeline",
                "text_encoder": [None, None],
                "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
                "unet": ["a", "b"],
            }
        )
    )
    with pytest.raises(GroundglassError, match="SDXL refiner"):
        detect_family(str(refiner))


def _file(path: Path, keys: list[str]) -> Path:
    save_file({k: torch.zeros(2) for k in keys}, str(path))
    return path


def test_single_files_are_told_apart_by_their_keys(tmp_path: Path) -> None:
    unet = "model.diffusion_model.input_blocks.0.0.weight"
    assert (
        detect_family(str(_file(tmp_path / "a.safetensors", [unet, "cond_stage_model.transformer.x"]))) is SD1
    )
    assert detect_family(str(_file(tmp_path / "b.safetensors", [unet, "cond_stage_model.model.x"]))) is SD2
    both = [unet, "conditioner.embedders.0.transformer.x", "conditioner.embedders.1.model.x"]
    assert detect_family(str(_file(tmp_path / "c.safetensors", both))) is SDXL
    with pytest.raises(GroundglassError, match="SDXL refiner"):
        detect_family(str(_file(tmp_path / "d.safetensors", [unet, "conditioner.embedders.0.model.x"])))
    with pytest.raises(
        GroundglassError, match=r"not a Stable Diffusion checkpoint|checkpoint .diffusers' name."
    ):
        detect_family(str(_file(tmp_path / "e.safetensors", ["transformer_blocks.0.attn.to_q.weight"])))
    (tmp_path / "f.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(GroundglassError, match="not a readable safetensors file"):
        detect_family(str(tmp_path / "f.safetensors"))


def test_a_vae_of_another_family_is_refused(tiny_pipeline_dir: Path, tiny_sdxl_dir: Path) -> None:
    with pytest.raises(GroundglassError) as info:
        load_components(str(tiny_sdxl_dir), local_files_only=True, vae=str(tiny_pipeline_dir))
    message = str(info.value)
    assert "Stable Diffusion 1.x/2.x VAE (scaling_factor 0.18215)" in message and "model is SDXL" in message
    assert "SDXL VAE" in info.value.fix
    with pytest.raises(GroundglassError, match=r"an SDXL VAE .scaling_factor 0.13025."):
        load_components(str(tiny_pipeline_dir), local_files_only=True, vae=str(tiny_sdxl_dir / "vae"))
    same = load_components(str(tiny_sdxl_dir), local_files_only=True, vae=str(tiny_sdxl_dir / "vae"))
    assert same.family is SDXL and same.text_encoder_2 is not None and same.tokenizer_2 is not None


def test_a_resolution_off_the_latent_grid_is_refused(make_config, capsys: pytest.CaptureFixture[str]) -> None:
    check_resolution(32, {"block_out_channels": [32, 64]}, SD1)
    with pytest.raises(GroundglassError, match=r"data.resolution 1020 is not a multiple of 8") as info:
        check_resolution(1020, {"block_out_channels": [128, 256, 512, 512]}, SDXL)
    assert info.value.fix == "use 1016 or 1024 (the family's own resolution is 1024)"

    code = run_in_process(["--config", str(make_config("odd", {"data": {"resolution": 33}}))])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "data.resolution must be a positive multiple of 8 (got 33)" in err and "1024 for SDXL" in err


def test_model_vae_draws_the_class_images_too(
    make_config, tiny_pipeline_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """model.vae reaches class-image generation (data.vae is linked from it): an SDXL VAE for an SD 1.x
    model is refused there as in training, before any image is drawn."""
    from groundglass.dreambooth.priors import ensure_class_images
    from groundglass.dreambooth.tiny import build_tiny_sdxl_pipeline

    xl_vae = build_tiny_sdxl_pipeline(tmp_path / "xl") / "vae"
    classes = tmp_path / "no-class-images-yet"
    with pytest.raises(GroundglassError, match=r"an SDXL VAE \(scaling_factor 0.13025\)"):
        ensure_class_images(
            str(tiny_pipeline_dir), "a photo of a cat", classes, 1, local_files_only=True, vae=str(xl_vae)
        )
    config = make_config(
        "vae", {"model": {"vae": str(xl_vae)}, "data": {"class_data_dir": str(classes)}}, steps=1
    )
    assert run_in_process(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "an SDXL VAE (scaling_factor 0.13025)" in err and "Traceback" not in err
    assert not list(classes.glob("*.png"))
