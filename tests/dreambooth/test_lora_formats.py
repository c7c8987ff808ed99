"""LoRA export in three layouts: diffusers/PEFT, kohya (A1111, ComfyUI) and ComfyUI's own, with metadata.

The kohya file, loaded by diffusers' own ``load_lora_weights`` (which converts kohya keys), must draw
the same image as the PEFT file of the same adapters; the ComfyUI file, applied the way ComfyUI applies
a LoRA (W += up @ down * alpha / rank on its model's state-dict names, which are the original-layout
single file's names), must give the weights of the merged single-file export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from groundglass.dreambooth.export import export_model
from groundglass.dreambooth.lora_formats import LoraRun
from groundglass.dreambooth.model import LoraSettings, attach_lora, load_components

RANK, ALPHA = 4, 8.0  # alpha != rank: a file that drops or guesses the alpha draws another image


def trained_lora(folder: Path) -> Any:
    components = load_components(str(folder), local_files_only=True)
    attach_lora(components, LoraSettings(rank=RANK, alpha=ALPHA), text_encoder=True, seed=1)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():  # trained-looking adapters: lora_B is zero at initialisation
        for encoder in (components.unet, *components.text_encoders()):
            for name, param in encoder.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
    return components


def draw(pipe: Any) -> np.ndarray:
    return pipe(
        "a photo of sks dog",
        num_inference_steps=2,
        height=32,
        width=32,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images[0]


def metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as f:
        return dict(f.metadata())


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_kohya_file_draws_what_the_peft_file_draws(
    family: str, tiny_pipeline_dir: Path, tiny_sdxl_dir: Path, tmp_path: Path
) -> None:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    base_dir = tiny_sdxl_dir if family == "sdxl" else tiny_pipeline_dir
    pipeline = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    out = tmp_path / "sks-dog"
    run = LoraRun(base_model=str(base_dir), trigger_word="sks", steps=400)
    written = export_model(
        trained_lora(base_dir), out, formats={"lora", "lora-kohya", "lora-comfyui"}, run=run
    )
    assert written == {
        "lora": out / "lora" / "pytorch_lora_weights.safetensors",
        "lora-kohya": out / "lora" / "sks-dog-kohya.safetensors",
        "lora-comfyui": out / "lora" / "sks-dog-comfyui.safetensors",
    }

    kohya = load_file(str(written["lora-kohya"]))
    modules = {k.split(".")[0] for k in kohya}
    text_prefixes = ("lora_te1_", "lora_te2_") if family == "sdxl" else ("lora_te_",)
    assert all(m.startswith(("lora_unet_", *text_prefixes)) for m in modules)
    assert all(any(m.startswith(p) for m in modules) for p in text_prefixes)
    if family == "sdxl":  # sd-scripts' SDXL UNet names: input_blocks / middle_block / output_blocks
        assert any(m.startswith("lora_unet_input_blocks_") for m in modules)
        assert not any(m.startswith("lora_unet_down_blocks_") for m in modules)
    else:  # sd-scripts' SD 1.x UNet names are diffusers'
        assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q" in modules
    assert {kohya[f"{m}.alpha"].item() for m in modules} == {ALPHA}
    assert all(f"{m}.lora_down.weight" in kohya and f"{m}.lora_up.weight" in kohya for m in modules)

    for fmt, path in written.items():
        meta = metadata(path)
        assert meta["ss_network_dim"] == str(RANK) and meta["ss_network_alpha"] == str(ALPHA), fmt
        assert meta["ss_sd_model_name"] == str(base_dir) and meta["ss_steps"] == "400", fmt
        assert meta["modelspec.trigger_phrase"] == "sks" and meta["modelspec.title"] == "sks-dog", fmt
        arch = "stable-diffusion-xl-v1-base/lora" if family == "sdxl" else "stable-diffusion-v1/lora"
        assert meta["modelspec.architecture"] == arch, fmt

    base = pipeline.from_pretrained(base_dir, local_files_only=True)
    plain = draw(base)
    base.load_lora_weights(out / "lora")  # the PEFT file (diffusers' default name)
    with_peft = draw(base)
    base.unload_lora_weights()
    torch.testing.assert_close(draw(base), plain)  # unloaded: the base model again
    base.load_lora_weights(out / "lora", weight_name=written["lora-kohya"].name)
    with_kohya = draw(base)
    assert np.abs(with_peft - plain).max() > 0.05  # the adapters change the image
    np.testing.assert_allclose(with_kohya, with_peft, atol=2e-4)


def comfy_target(module: str, family: str) -> tuple[str, str]:
    """Where ComfyUI applies a LoRA module: ComfyUI's model names are the single file's with ``model.``
    dropped from the UNet's and the text encoders renamed ``clip_l`` (SD 1.x's and SDXL's first) and
    ``clip_g`` (SDXL's second, which ComfyUI holds in the Hugging Face layout, q/k/v apart)."""
    if module.startswith("diffusion_model."):
        return "file", f"model.{module}.weight"
    for name, where in (
        (
            "clip_l",
            "conditioner.embedders.0.transformer." if family == "sdxl" else "cond_stage_model.transformer.",
        ),
        ("clip_g", ""),
    ):
        prefix = f"text_encoders.{name}.transformer."
        if module.startswith(prefix):
            rest = f"{module[len(prefix) :]}.weight"
            return ("text_encoder_2", rest) if name == "clip_g" else ("file", where + rest)
    raise AssertionError(module)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_comfyui_file_patches_the_base_weights_into_the_merged_ones(
    family: str, tiny_pipeline_dir: Path, tiny_sdxl_dir: Path, tmp_path: Path
) -> None:
    base_dir = tiny_sdxl_dir if family == "sdxl" else tiny_pipeline_dir
    plain = load_components(str(base_dir), local_files_only=True)
    base = {"text_encoder_2": dict(plain.text_encoder_2.state_dict()) if family == "sdxl" else {}}
    base["file"] = load_file(
        str(export_model(plain, tmp_path / "base", formats={"single-file"})["single-file"])
    )
    components = trained_lora(base_dir)
    n_adapters = sum(
        1
        for m in (components.unet, *components.text_encoders())
        for n, _ in m.named_modules()
        if n.endswith("lora_A")
    )
    written = export_model(components, tmp_path / "run", formats={"lora-comfyui", "single-file"})
    comfy = load_file(str(written["lora-comfyui"]))
    merged = {"file": load_file(str(written["single-file"]))}  # export merged the adapters in place:
    merged["text_encoder_2"] = dict(components.text_encoder_2.state_dict()) if family == "sdxl" else {}

    modules = {k.removesuffix(".lora_up.weight") for k in comfy if k.endswith(".lora_up.weight")}
    assert len(modules) == n_adapters and len(comfy) == 3 * n_adapters  # up, down, alpha each
    patched = {where: dict(weights) for where, weights in base.items()}
    for module in modules:  # what ComfyUI does with a LoRA: W += up @ down * alpha / rank
        up, down = comfy[f"{module}.lora_up.weight"], comfy[f"{module}.lora_down.weight"]
        where, key = comfy_target(module, family)
        patched[where][key] = base[where][key] + up @ down * comfy[f"{module}.alpha"].item() / down.shape[0]
    bigg = "conditioner.embedders.1."  # SDXL's second encoder: checked in ComfyUI's (Hugging Face) layout
    merged["file"] = {k: v for k, v in merged["file"].items() if not k.startswith(bigg)}
    for where in ("file", "text_encoder_2"):
        changed = {k for k in merged[where] if not torch.equal(merged[where][k], base[where][k])}
        assert changed == {key for w, key in map(lambda m: comfy_target(m, family), modules) if w == where}
        for key in merged[where]:
            torch.testing.assert_close(patched[where][key], merged[where][key], atol=1e-5, rtol=1e-4)
