"""Classifier-free-guided sampling: CFG equivalence, per-seed reproducibility, parity with diffusers, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from groundglass.cli import main
from groundglass.dreambooth.model import load_components
from groundglass.dreambooth.sample import (
    SCHEDULERS,
    encode_prompts,
    generate,
    make_scheduler,
    predict_guided,
)
from groundglass.errors import GroundglassError


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUNDGLASS_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def components(tiny_pipeline_dir: Path):
    return load_components(str(tiny_pipeline_dir), local_files_only=True)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_cfg_batched_pass_equals_two_separate_passes(components) -> None:
    torch.manual_seed(0)
    latents = torch.randn(2, 4, 16, 16)
    cond = encode_prompts(components.tokenizer, components.text_encoder, ["a photo of sks dog", "a red cat"])
    uncond = encode_prompts(components.tokenizer, components.text_encoder, ["", ""])
    t = torch.tensor(500)
    scale = 6.0
    with torch.no_grad():
        batched = predict_guided(components.unet, latents, t, torch.cat([uncond, cond]), scale)
        eps_uncond = components.unet(latents, t, encoder_hidden_states=uncond).sample
        eps_cond = components.unet(latents, t, encoder_hidden_states=cond).sample
    separate = eps_uncond + scale * (eps_cond - eps_uncond)
    torch.testing.assert_close(batched, separate, atol=1e-5, rtol=1e-4)
    # Guidance does something: the guided prediction is neither half on its own.
    assert not torch.allclose(batched, eps_cond, atol=1e-4)
    # Scale <= 1 is the plain conditional prediction.
    with torch.no_grad():
        plain = predict_guided(components.unet, latents, t, cond, 1.0)
    torch.testing.assert_close(plain, eps_cond)


def test_each_seed_gives_the_same_image_alone_or_in_a_batch(components) -> None:
    prompts = ["a photo of sks dog", "a red cat", "a toy on the moon"]
    batch = generate(components, prompts, seeds=[5, 6, 7], steps=2, guidance_scale=5.0, batch_size=3)
    alone = [
        generate(components, [p], seeds=[s], steps=2, guidance_scale=5.0)[0]
        for p, s in zip(prompts, [5, 6, 7], strict=True)
    ]
    for a, b in zip(batch, alone, strict=True):
        assert a.size == (32, 32)
        assert np.abs(pixels(a) - pixels(b)).max() <= 2  # float rounding of batched kernels, nothing more
    other_seed = generate(components, [prompts[0]], seeds=[8], steps=2, guidance_scale=5.0)[0]
    assert np.abs(pixels(other_seed) - pixels(alone[0])).max() > 2


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_matches_the_diffusers_pipeline(
    tmp_path_factory, tiny_pipeline_dir: Path, prediction_type: str
) -> None:
    from diffusers import StableDiffusionPipeline

    from groundglass.dreambooth.tiny import build_tiny_pipeline

    folder = (
        tiny_pipeline_dir
        if prediction_type == "epsilon"
        else build_tiny_pipeline(tmp_path_factory.mktemp("tiny-v") / "p", prediction_type="v_prediction")
    )
    comps = load_components(str(folder), local_files_only=True)
    assert comps.noise_scheduler.config.prediction_type == prediction_type
    prompts, seeds = ["a photo of sks dog", "a red cat"], [3, 4]
    for name in SCHEDULERS:
        ours = generate(
            comps,
            prompts,
            negative_prompt="blue",
            seeds=seeds,
            steps=2,
            guidance_scale=5.0,
            scheduler=name,
            batch_size=2,
        )
        pipe = StableDiffusionPipeline(
            vae=comps.vae,
            text_encoder=comps.text_encoder,
            tokenizer=comps.tokenizer,
            unet=comps.unet,
            scheduler=make_scheduler(name, comps.noise_scheduler.config),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        ref = pipe(
            prompts,
            negative_prompt=["blue", "blue"],
            num_inference_steps=2,
            guidance_scale=5.0,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
            height=32,
            width=32,
        ).images
        for a, b in zip(ours, ref, strict=True):
            assert np.abs(pixels(a) - pixels(b)).max() <= 1, name


def test_sampling_leaves_training_state_alone(components) -> None:
    components.unet.train()
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    generate(components, ["a photo of sks dog"], seeds=[0], steps=2, scheduler="euler")
    assert torch.equal(torch.get_rng_state(), rng_before)  # never the global RNG
    assert components.unet.training and not components.vae.training
    components.unet.eval()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"scheduler": "plms"}, "unknown scheduler 'plms'"),
        ({"steps": -3}, "steps must be at least 1"),
        ({"height": 30}, "height must be a positive multiple of 8"),
        ({"guidance_scale": -1.0}, "guidance scale must be 0 or more"),
        ({"seeds": [1, 2]}, "1 prompts but 2 seeds"),
    ],
)
def test_bad_sampling_arguments_are_named(components, kwargs: dict, expected: str) -> None:
    args = {"seeds": [0], "steps": 2, **kwargs}
    with pytest.raises(GroundglassError, match=expected):
        generate(components, ["a photo of dog"], **args)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sample_cli_writes_pngs_with_their_settings(tiny_pipeline_dir: Path, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "samples"
    code, out, err = run_cli(
        [
            "dreambooth",
            "sample",
            "--model",
            str(tiny_pipeline_dir),
            "--prompt",
            "a photo of sks dog in the snow",
            "--negative-prompt",
            "blue",
            "--steps",
            "2",
            "--guidance-scale",
            "4.5",
            "--scheduler",
            "dpm++",
            "--seed",
            "11",
            "--num-images",
            "2",
            "--out",
            str(out_dir),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    files = sorted(out_dir.glob("*.png"))
    assert [f.name for f in files] == [
        "a-photo-of-sks-dog-in-the-snow-11.png",
        "a-photo-of-sks-dog-in-the-snow-12.png",
    ]
    assert out.split() == [str(f) for f in files]
    with Image.open(files[1]) as image:
        meta = dict(image.text)
        assert image.size == (32, 32)
    assert meta["prompt"] == "a photo of sks dog in the snow"
    assert meta["negative_prompt"] == "blue"
    assert meta["seed"] == "12"
    assert meta["steps"] == "2"
    assert meta["guidance_scale"] == "4.5"
    assert meta["scheduler"] == "dpm++"
    assert meta["model"] == str(tiny_pipeline_dir)
    assert "Seed: 12" in meta["parameters"] and "Negative prompt: blue" in meta["parameters"]
    # Image 12 is reproducible on its own from the recorded settings.
    comps = load_components(str(tiny_pipeline_dir), local_files_only=True)
    again = generate(
        comps,
        [meta["prompt"]],
        negative_prompt="blue",
        seeds=[12],
        steps=2,
        guidance_scale=4.5,
        scheduler="dpm++",
    )[0]
    with Image.open(files[1]) as image:
        assert np.abs(pixels(image.convert("RGB")) - pixels(again)).max() <= 2


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing-folder", "not found"),
        ("missing-component", "vae/"),
        ("bad-scheduler", "unknown scheduler 'plms'"),
        ("negative-steps", "steps must be at least 1"),
        ("out-is-a-file", "is a file"),
        ("out-under-a-file", "cannot create output folder"),
    ],
)
def test_sample_cli_bad_inputs(
    case: str, expected: str, tiny_pipeline_dir: Path, tmp_path: Path, capsys
) -> None:
    model, extra, out = str(tiny_pipeline_dir), [], tmp_path / "out"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    if case == "missing-folder":
        model = str(tmp_path / "no-such-model")
    elif case == "missing-component":
        broken = tmp_path / "broken"
        shutil.copytree(tiny_pipeline_dir, broken)
        shutil.rmtree(broken / "vae")
        model = str(broken)
    elif case == "bad-scheduler":
        extra = ["--scheduler", "plms"]
    elif case == "negative-steps":
        extra = ["--steps", "-1"]
    elif case == "out-is-a-file":
        out = blocker
    else:
        out = blocker / "sub"
    code, _, err = run_cli(
        [
            "dreambooth",
            "sample",
            "--model",
            model,
            "--prompt",
            "a dog",
            "--steps",
            "2",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
        capsys,
    )
    assert code == 2
    assert err.startswith("error: ") and expected in err
    assert "Traceback" not in err
