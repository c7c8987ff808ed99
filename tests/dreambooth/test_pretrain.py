"""The toy world's pretraining: diffusers' Min-SNR weights and EMA, and the learning-rate schedule, give
what the formulas the shipped base model was trained with gave; a few steps of a run, and a resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from groundglass.dreambooth.world.pretrain import (
    cosine,
    lr_schedule,
    main,
    make_ema,
    min_snr_weights,
)
from groundglass.dreambooth.world.toy_sd import noise_scheduler


def test_min_snr_weights_are_the_formula_the_base_model_was_trained_with() -> None:
    scheduler = noise_scheduler()
    timesteps = torch.arange(1000)
    alphas = scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    trained_with = torch.clamp(snr, max=5.0) / snr
    weights = min_snr_weights(scheduler, timesteps)
    torch.testing.assert_close(weights, trained_with, rtol=1e-6, atol=0)
    noisy = snr <= 5.0  # where the SNR is under gamma, the weight is exactly 1
    assert noisy.any() and bool((weights[noisy] == 1.0).all())
    assert float(weights[0]) < 0.01  # the least noisy step weighs least


def test_ema_decays_are_the_formula_the_base_model_was_trained_with() -> None:
    for start in (0, 7):  # a fresh run, and one resumed at UNet step 7
        gen = torch.Generator().manual_seed(start)
        param = torch.nn.Parameter(torch.randn(6, generator=gen))
        ema = make_ema([param], 0.9, start=start)
        average = param.detach().clone()
        for step in range(start + 1, start + 121):  # past step 80, where the cap of 0.9 takes over
            with torch.no_grad():
                param.add_(torch.randn(6, generator=gen))
            decay = min(0.9, (1 + step) / (10 + step))
            average.lerp_(param.detach(), 1 - decay)
            ema.step([param])
            assert ema.cur_decay_value == decay, step
            torch.testing.assert_close(ema.shadow_params[0], average, rtol=1e-6, atol=1e-6)


def test_lr_schedule_is_warmup_times_cosine_over_every_step() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1e-3)
    schedule = lr_schedule(opt, warmup=100, total=300)
    for step in range(1, 301):
        expected = 1e-3 * min(1.0, step / 100) * cosine(step, 300)
        assert math.isclose(opt.param_groups[0]["lr"], expected, rel_tol=1e-12), step
        opt.step()
        schedule.step()
    assert math.isclose(cosine(300, 300), 0.1)


def _state(out: Path) -> dict[str, int]:
    return json.loads((out / "pretrain_state.json").read_text(encoding="utf-8"))


def test_a_short_run_saves_a_pipeline_and_resumes_from_it(tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    out = tmp_path / "model"
    tiny = ["--out", str(out), "--images", "16", "--batch", "4", "--threads", "1", "--save-every", "2"]
    assert main([*tiny, "--vae-steps", "2", "--unet-steps", "3"]) == 0
    assert _state(out) == {"unet_step": 3, "seed": 0}
    log = (out / "training_log.txt").read_text(encoding="utf-8")
    assert "saved the EMA model at UNet step 2" in log and "saved the EMA model at UNet step 3" in log
    pipe = StableDiffusionPipeline.from_pretrained(str(out), local_files_only=True)
    assert pipe.unet.config.sample_size == 8 and pipe.vae.config.scaling_factor != 0.18215
    assert main([*tiny, "--unet-steps", "2", "--resume"]) == 0
    assert _state(out) == {"unet_step": 5, "seed": 0}
    assert main(["--out", str(out), "--to-fp16"]) == 0
    (weights,) = (out / "unet").glob("*.safetensors")
    with safe_open(str(weights), "pt") as handle:
        names = handle.keys()
        assert {handle.get_slice(k).get_dtype() for k in names} == {"F16"}


def test_a_variant_takes_a_trained_vae_a_wider_unet_and_the_extra_shapes(tmp_path: Path) -> None:
    """The options behind the larger-UNet and wider-world experiments build the model they name."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    from groundglass.dreambooth.world.generator import EXTRA_SHAPES
    from groundglass.dreambooth.world.personalise import BASE_MODEL_DIR

    out = tmp_path / "variant"
    args = ["--out", str(out), "--images", "16", "--batch", "4", "--threads", "1", "--unet-steps", "2"]
    extra = ["--vae-from", str(BASE_MODEL_DIR), "--unet-channels", "32,64", "--extra-shapes"]
    assert main([*args, *extra]) == 0
    log = (out / "training_log.txt").read_text(encoding="utf-8")
    assert "no VAE stage" in log and "vae step" not in log
    pipe = StableDiffusionPipeline.from_pretrained(str(out), local_files_only=True)
    assert tuple(pipe.unet.config.block_out_channels) == (32, 64)
    shipped = load_file(BASE_MODEL_DIR / "vae" / "diffusion_pytorch_model.safetensors")
    for name, tensor in pipe.vae.state_dict().items():
        assert torch.equal(tensor, shipped[name].float()), name
    shipped_scaling = json.loads((BASE_MODEL_DIR / "vae" / "config.json").read_text())["scaling_factor"]
    assert pipe.vae.config.scaling_factor == shipped_scaling
    for word in ("sks", *EXTRA_SHAPES):
        assert len(pipe.tokenizer.tokenize(word)) == 1, word


def test_bad_variant_options_are_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, said in [
        (["--unet-channels", "abc"], "multiples of 16"),
        (["--unet-channels", "64,100"], "multiples of 16"),
        (["--vae-from", str(tmp_path / "nothing")], "no vae/config.json there"),
    ]:
        with pytest.raises(SystemExit) as stopped:
            main(["--out", str(tmp_path / "model"), *args])
        assert stopped.value.code == 2 and said in capsys.readouterr().err
    assert not (tmp_path / "model").exists()
