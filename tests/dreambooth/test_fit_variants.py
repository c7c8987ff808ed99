"""What trains: LoRA adapters, the text encoder trained or frozen; LR scaling and precision flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dreambooth_helpers import run_in_process, step_losses
from safetensors.torch import load_file

from groundglass.dreambooth.trained import load_trained


def _base(pipeline: Path, part: str) -> dict[str, torch.Tensor]:
    name = "model.safetensors" if part == "text_encoder" else "diffusion_pytorch_model.safetensors"
    return load_file(pipeline / part / name)


def _changed(state: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in base.items() if not torch.equal(state[k], v)}


def test_lora_on_unet_and_text_encoder(tmp_path: Path, make_config, tiny_pipeline_dir: Path) -> None:
    config = make_config(
        "lora",
        {
            "trainer": {"precision": "bf16-mixed"},
            "model": {
                "lora": {"rank": 2},
                "train_text_encoder": True,
                "learning_rate": 1.0e-2,
                "gradient_checkpointing": True,
            },
        },
        steps=2,
    )
    assert run_in_process(["--config", str(config)]) == 0
    ckpt_path = tmp_path / "lora" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    keys = set(ckpt["state_dict"])
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    assert {k.split(".")[0] for k in keys} == {"unet", "text_encoder"}
    assert ckpt_path.stat().st_size < 1_000_000  # adapters and their Adam moments only

    components, hparams = load_trained(ckpt_path)
    assert hparams["lora"]["rank"] == 2
    unet_state = components.unet.state_dict()
    lora_b = [v for k, v in unet_state.items() if ".lora_B." in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero; training moved it
    # The base weights under the adapters are untouched.
    base_unet = _base(tiny_pipeline_dir, "unet")
    for key, value in base_unet.items():
        wrapped = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(unet_state.get(key, unet_state.get(wrapped)), value), key
    text_state = components.text_encoder.state_dict()
    assert any(v.abs().sum() > 0 for k, v in text_state.items() if ".lora_B." in k)
    assert not _changed(components.vae.state_dict(), _base(tiny_pipeline_dir, "vae"))
    # The adapters change what the UNet predicts.
    latents, t = torch.randn(1, 4, 16, 16), torch.tensor([500])
    hidden = torch.randn(1, 77, 32)
    with torch.no_grad():
        adapted = components.unet(latents, t, hidden).sample
        components.unet.disable_adapters()
        plain = components.unet(latents, t, hidden).sample
    assert not torch.allclose(adapted, plain)


def test_text_encoder_trained_vs_frozen(tmp_path: Path, make_config, tiny_pipeline_dir: Path) -> None:
    settings = {
        "trainer": {"accumulate_grad_batches": 2, "gradient_clip_val": 1.0},
        "model": {"learning_rate": 1.0e-3, "scale_lr": True, "lr_scheduler": "constant"},
    }
    with_text = {**settings, "model": {**settings["model"], "train_text_encoder": True}}
    trained = make_config("with-text", with_text, steps=2)
    frozen = make_config("frozen-text", settings, steps=2)
    assert run_in_process(["--config", str(trained)]) == 0
    assert run_in_process(["--config", str(frozen)]) == 0

    base = {part: _base(tiny_pipeline_dir, part) for part in ("unet", "vae", "text_encoder")}
    with_text, _ = load_trained(tmp_path / "with-text" / "checkpoints" / "last.ckpt")
    without, _ = load_trained(tmp_path / "frozen-text" / "checkpoints" / "last.ckpt")
    text_changed = _changed(with_text.text_encoder.state_dict(), base["text_encoder"])
    assert len(text_changed) > 0.8 * len(base["text_encoder"])  # (a few, like position ids, are buffers)
    assert _changed(with_text.unet.state_dict(), base["unet"])
    assert not _changed(with_text.vae.state_dict(), base["vae"])
    assert not _changed(without.text_encoder.state_dict(), base["text_encoder"])
    assert _changed(without.unet.state_dict(), base["unet"])
    assert not _changed(without.vae.state_dict(), base["vae"])
    ckpt = torch.load(tmp_path / "with-text" / "checkpoints" / "last.ckpt", weights_only=True)
    assert {k.split(".")[0] for k in ckpt["state_dict"]} == {"unet", "text_encoder"}
    assert [len(g["params"]) for g in ckpt["optimizer_states"][0]["param_groups"]] == [
        len(base["unet"]),
        sum(1 for k in ckpt["state_dict"] if k.startswith("text_encoder.")),
    ]
    # LR scaling: 1e-3 x batch 1 x 1 device x 2 accumulated batches.
    lrs = list(step_losses(tmp_path / "with-text", "train/lr").values())
    assert len(lrs) == 2 and lrs == pytest.approx([2.0e-3, 2.0e-3])


def test_identifier_embedding_trains_alone(tmp_path: Path, make_config, tiny_pipeline_dir: Path) -> None:
    config = make_config(
        "identifier",
        {
            "model": {
                "train_token_embeddings": ["sks"],
                "learning_rate": 1.0e-2,
                "text_encoder_learning_rate": 5.0e-2,
            }
        },
        steps=2,
    )
    assert run_in_process(["--config", str(config)]) == 0
    components, hparams = load_trained(tmp_path / "identifier" / "checkpoints" / "last.ckpt")
    assert hparams["train_token_embeddings"] == ["sks"]
    base = _base(tiny_pipeline_dir, "text_encoder")
    key = next(k for k in base if k.endswith("token_embedding.weight"))
    assert _changed(components.text_encoder.state_dict(), base) == {key}
    trained = components.text_encoder.get_input_embeddings().weight
    moved = (trained != base[key]).any(dim=1).nonzero().flatten().tolist()
    assert moved == components.tokenizer("sks", add_special_tokens=False).input_ids
    assert _changed(components.unet.state_dict(), _base(tiny_pipeline_dir, "unet"))
    # the class prompt, which has no "sks", encodes exactly as the base model's text encoder does
    from groundglass.dreambooth.model import load_components
    from groundglass.dreambooth.sample import encode_prompts

    plain = load_components(str(tiny_pipeline_dir), local_files_only=True)
    with torch.no_grad():
        for prompt, same in (("a photo of a cat", True), ("a photo of sks cat", False)):
            ours = encode_prompts(components.tokenizer, components.text_encoder, [prompt])
            theirs = encode_prompts(plain.tokenizer, plain.text_encoder, [prompt])
            assert torch.equal(ours, theirs) is same, prompt


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"train_token_embeddings": ["sks"], "train_text_encoder": True}, "trains every weight"),
        ({"train_token_embeddings": ["astronaut"]}, "'astronaut' is 8 tokens"),
    ],
)
def test_identifier_embedding_refuses_bad_settings(
    make_config, capsys: pytest.CaptureFixture[str], model: dict, message: str
) -> None:
    config = make_config("bad", {"model": model}, steps=1)
    assert run_in_process(["--config", str(config)]) != 0
    assert message in capsys.readouterr().err
