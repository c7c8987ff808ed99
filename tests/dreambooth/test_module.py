"""The LightningModule without a Trainer: what trains, the prior-preservation loss, the targets, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from groundglass.dreambooth.data import DreamBoothStream, ImageSet, load_image
from groundglass.dreambooth.model import LoraSettings, load_components
from groundglass.dreambooth.module import DreamBoothModule, make_optimizer
from groundglass.errors import GroundglassError


@pytest.fixture(scope="module")
def batch(instance_dir: Path, class_dir: Path) -> dict:
    instances = ImageSet(
        [load_image(p, 32) for p in sorted(instance_dir.glob("*.png"))], "a photo of sks cat"
    )
    classes = ImageSet([load_image(p, 32) for p in sorted(class_dir.glob("*.png"))], "a photo of a cat")
    stream = DreamBoothStream(
        instances, classes, resolution=32, batch_size=2, seed=0, center_crop=False, random_flip=True
    )
    return stream.batch(0)


def _module(pipeline: Path, **kwargs) -> DreamBoothModule:
    return DreamBoothModule(str(pipeline), local_files_only=True, **kwargs)


def _grads(module: DreamBoothModule, batch: dict) -> torch.Tensor:
    module.zero_grad(set_to_none=True)
    module.step_losses(batch)["loss"].backward()
    return torch.cat([p.grad.flatten() for p in module.trainable_parameters()])


def test_what_trains(tiny_pipeline_dir: Path) -> None:
    unet_only = _module(tiny_pipeline_dir)
    assert all(k.startswith("unet.") for k in unet_only.trainable_keys())
    assert len(unet_only.trainable_keys()) == len(list(unet_only.unet.parameters()))
    assert not any(p.requires_grad for p in unet_only.vae.parameters())
    assert not any(p.requires_grad for p in unet_only.text_encoder.parameters())
    unet_only.train()
    assert unet_only.unet.training and not unet_only.vae.training and not unet_only.text_encoder.training

    both = _module(tiny_pipeline_dir, train_text_encoder=True)
    assert {k.split(".")[0] for k in both.trainable_keys()} == {"unet", "text_encoder"}
    both.train()
    assert both.text_encoder.training and not both.vae.training

    lora = _module(tiny_pipeline_dir, lora=LoraSettings(rank=2), train_text_encoder=True)
    keys = lora.trainable_keys()
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    assert {k.split(".")[0] for k in keys} == {"unet", "text_encoder"}
    trainable = sum(p.numel() for p in lora.trainable_parameters())
    assert trainable < 0.05 * sum(p.numel() for p in lora.parameters())
    # Same seed, same LoRA initialisation.
    again = _module(tiny_pipeline_dir, lora=LoraSettings(rank=2), train_text_encoder=True)
    for a, b in zip(lora.trainable_parameters(), again.trainable_parameters(), strict=True):
        assert torch.equal(a, b)


def test_frozen_parts_get_no_gradient_and_no_optimizer_state(tiny_pipeline_dir: Path, batch: dict) -> None:
    module = _module(tiny_pipeline_dir)
    _grads(module, batch)
    assert all(p.grad is None for p in module.vae.parameters())
    assert all(p.grad is None for p in module.text_encoder.parameters())
    groups = [{"params": module.trainable_parameters(), "lr": 1e-3}]
    optimizer = make_optimizer("adamw", groups, betas=(0.9, 0.999), weight_decay=0.0, eps=1e-8)
    optimizer.step()
    assert len(optimizer.state) == len(module.trainable_parameters())
    with pytest.warns(UserWarning, match="adamw8bit needs a CUDA device"):
        fallback = make_optimizer("adamw8bit", groups, betas=(0.9, 0.999), weight_decay=0.0, eps=1e-8)
    assert isinstance(fallback, torch.optim.AdamW)


def test_prior_loss_weight_scales_the_class_gradient(tiny_pipeline_dir: Path, batch: dict) -> None:
    grads = {}
    for weight in (0.0, 1.0, 2.0):
        module = _module(tiny_pipeline_dir, prior_loss_weight=weight)
        losses = module.step_losses(batch)
        assert set(losses) == {"loss", "loss_instance", "loss_prior"}
        torch.testing.assert_close(losses["loss"], losses["loss_instance"] + weight * losses["loss_prior"])
        grads[weight] = _grads(module, batch)
    # The gradient is linear in lambda: g(2) - g(1) == g(1) - g(0) == the class term's gradient.
    torch.testing.assert_close(grads[2.0] - grads[1.0], grads[1.0] - grads[0.0], atol=1e-6, rtol=1e-4)
    assert (grads[1.0] - grads[0.0]).abs().max() > 1e-4
    # With lambda = 0 only the instance examples count: same gradient as a batch without class images.
    instance_only = {k: v for k, v in batch.items() if not k.startswith("class_")}
    torch.testing.assert_close(
        _grads(_module(tiny_pipeline_dir, prior_loss_weight=0.0), instance_only),
        grads[0.0],
        atol=1e-6,
        rtol=1e-4,
    )


def test_one_batched_pass_equals_separate_passes(tiny_pipeline_dir: Path, batch: dict) -> None:
    module = _module(tiny_pipeline_dir)
    module.eval()
    pixels = torch.cat([batch["instance_pixels"], batch["class_pixels"]])
    seeds = batch["instance_seeds"] + batch["class_seeds"]
    prompts = batch["instance_prompts"] + batch["class_prompts"]
    timesteps, eps, noise = module.draw(seeds, module.latent_shape(32, 32))
    with torch.no_grad():
        latents = module.encode_images(pixels, eps)
        hidden = module.encode_prompts(prompts)
        joint = module.diffusion_loss(latents, hidden, timesteps, noise, n_instance=2)
        inst = module.diffusion_loss(latents[:2], hidden[:2], timesteps[:2], noise[:2], n_instance=2)
        cls = module.diffusion_loss(latents[2:], hidden[2:], timesteps[2:], noise[2:], n_instance=2)
    torch.testing.assert_close(joint["loss_instance"], inst["loss"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(joint["loss_prior"], cls["loss"], atol=1e-6, rtol=1e-5)
    # Per-example randomness: an example draws the same numbers alone or in a batch.
    t1, e1, n1 = module.draw(seeds[1:2], module.latent_shape(32, 32))
    assert torch.equal(t1, timesteps[1:2]) and torch.equal(e1, eps[1:2]) and torch.equal(n1, noise[1:2])


def test_v_prediction_targets_the_velocity(tiny_pipeline_dir: Path, batch: dict) -> None:
    module = _module(tiny_pipeline_dir, prediction_type="v_prediction")
    assert module.noise_scheduler.config.prediction_type == "v_prediction"
    instance_only = {k: v for k, v in batch.items() if not k.startswith("class_")}
    timesteps, eps, noise = module.draw(instance_only["instance_seeds"], module.latent_shape(32, 32))
    with torch.no_grad():
        latents = module.encode_images(instance_only["instance_pixels"], eps)
        hidden = module.encode_prompts(instance_only["instance_prompts"])
        loss = module.diffusion_loss(latents, hidden, timesteps, noise, n_instance=2)["loss"]
        noisy = module.noise_scheduler.add_noise(latents, noise, timesteps)
        pred = module.unet(noisy, timesteps, hidden).sample
        velocity = module.noise_scheduler.get_velocity(latents, noise, timesteps)
    torch.testing.assert_close(loss, torch.mean((pred - velocity) ** 2), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(loss, torch.mean((pred - noise) ** 2))


def test_base_model_folder_missing_parts(tmp_path: Path, tiny_pipeline_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_pipeline_dir, broken)
    shutil.rmtree(broken / "vae")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(GroundglassError) as info:
        load_components(str(broken), local_files_only=True)
    assert "vae/ (missing)" in str(info.value) and "unet/ (no weights file)" in str(info.value)
    with pytest.raises(GroundglassError, match="does not exist"):
        load_components(str(tmp_path / "nowhere" / "model"), local_files_only=True)
    with pytest.raises(GroundglassError, match="cannot load base Hugging Face model"):
        load_components("no-such-org/no-such-model", local_files_only=True)


def test_bad_hyperparameters(tiny_pipeline_dir: Path) -> None:
    with pytest.raises(GroundglassError, match="learning_rate must be positive"):
        _module(tiny_pipeline_dir, learning_rate=0.0)
    with pytest.raises(GroundglassError, match="prior_loss_weight"):
        _module(tiny_pipeline_dir, prior_loss_weight=-1.0)


def test_tiny_pipeline_is_a_real_diffusers_folder(tiny_pipeline_dir: Path) -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_pipeline_dir, local_files_only=True)
    tokens = pipe.tokenizer.tokenize("a photo of sks dog")
    assert tokens == ["a</w>", "photo</w>", "of</w>", "sks</w>", "dog</w>"]
    assert pipe.scheduler.config.prediction_type == "epsilon" and pipe.unet.config.sample_size == 16
    image = pipe(
        "a photo of sks dog",
        num_inference_steps=2,
        height=32,
        width=32,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert image.shape == (32, 32, 3)
