"""The paper's judges (CLIP-I, CLIP-T, DINO) with tiny random CLIP / DINO / DINOv2 checkpoints, and the
fidelity tracker that logs them during ``groundglass dreambooth fit`` and picks the best step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dreambooth_helpers import run_in_process
from judge_models import build_clip, build_dino, build_dinov2
from PIL import Image

from groundglass.dreambooth import judges
from groundglass.dreambooth.world.generator import Scene, render
from groundglass.errors import GroundglassError, ModelError, NotFoundError


@pytest.fixture(scope="module")
def judge_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("judges")
    return {
        "clip": build_clip(root / "clip"),
        "dino": build_dino(root / "dino"),
        "dinov2": build_dinov2(root / "dinov2"),
    }


def _scenes() -> tuple[object, object]:
    red_circle = render(Scene("circle", "red", "large", "plain", 0.5, 0.5), np.random.default_rng(0))
    blue_cross = render(Scene("cross", "blue", "large", "grid", 0.4, 0.6), np.random.default_rng(1))
    return red_circle, blue_cross


def test_judges_score_identical_images_as_one_and_different_ones_lower(judge_dirs: dict[str, Path]) -> None:
    red_circle, blue_cross = _scenes()
    clip = judges.ClipJudge.load(str(judge_dirs["clip"]), local_files_only=True)
    assert clip.image_embeddings([red_circle, blue_cross]).shape == (2, 16)
    dino = judges.DinoJudge.load(str(judge_dirs["dino"]), local_files_only=True)
    dinov2 = judges.DinoJudge.load(str(judge_dirs["dinov2"]), local_files_only=True)
    scorers = {
        "clip_i": lambda g, s: judges.clip_i(clip, g, s),
        "dino": lambda g, s: judges.dino(dino, g, s),
        "dinov2": lambda g, s: judges.dino(dinov2, g, s),
    }
    for name, score in scorers.items():
        assert score([red_circle], [red_circle]) == pytest.approx(1.0, abs=1e-5), name
        assert score([red_circle, red_circle], [red_circle]) == pytest.approx(1.0, abs=1e-5), name
        different = score([blue_cross], [red_circle])
        assert different < 1.0 - 1e-3, (name, different)
        # the mean runs over every (generated, instance) pair
        assert score([red_circle, blue_cross], [red_circle]) == pytest.approx((1.0 + different) / 2, abs=1e-5)

    # CLIP-T: each image against its own prompt, the identifier taken out first
    assert judges.strip_identifier("a photo of sks dog on the beach", "sks") == "a photo of dog on the beach"
    assert judges.strip_identifier("a photo of a sksy dog", "sks") == "a photo of a sksy dog"
    with_id = judges.clip_t(clip, [red_circle], ["a photo of a sks shape"], identifier="sks")
    assert with_id == pytest.approx(judges.clip_t(clip, [red_circle], ["a photo of a shape"]), abs=1e-6)
    image = clip.image_embeddings([red_circle])
    text = clip.text_embeddings(["a photo of a shape"])
    assert with_id == pytest.approx(float(image[0] @ text[0]), abs=1e-5)
    prompts = ["a photo of a red circle", "a photo of a blue cross"]
    pairs = clip.image_embeddings([red_circle, blue_cross]) * clip.text_embeddings(prompts)
    assert judges.clip_t(clip, [red_circle, blue_cross], prompts) == pytest.approx(
        float(pairs.sum(1).mean()), abs=1e-5
    )
    # weights load as float32 whatever the checkpoint's dtype
    assert {p.dtype for p in clip.model.parameters()} == {torch.float32}


def test_judge_models_that_cannot_load_are_named_with_the_fix(
    judge_dirs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match=r"clip_model: '\./no/such/clip' is neither") as err:
        judges.ClipJudge.load("./no/such/clip", local_files_only=True)
    assert "safe_serialization=True" in err.value.fix
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((judge_dirs["dino"] / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelError, match=r"only pickle weights \(pytorch_model.bin\)"):
        judges.DinoJudge.load(str(pickled), local_files_only=True)
    with pytest.raises(ModelError, match=r"no config\.json"):
        judges.DinoJudge.load(str(tmp_path), option="my.dino", local_files_only=True)
    with pytest.raises(ModelError, match=r"dino_model: .* is a clip model, not a vision transformer"):
        judges.DinoJudge.load(str(judge_dirs["clip"]), local_files_only=True)
    with pytest.raises(ModelError, match="clip_model: cannot load 'nobody/not-a-cached-model'") as err:
        judges.ClipJudge.load("nobody/not-a-cached-model", local_files_only=True)
    assert "fix clip_model" in err.value.fix


def _tracked_config(
    make_config, judge_dirs: dict[str, Path], root: Path, model: dict | None = None, **tracker: object
) -> Path:
    args = {
        "every_n_steps": 1,
        "prompts": ["a photo of sks cat on the moon", "a photo of a red sks cat"],
        "seeds": [0, 1],
        "steps": 2,
        "guidance_scale": 2.0,
        "local_files_only": True,
        "clip_model": str(judge_dirs["clip"]),
        "dino_model": str(judge_dirs["dino"]),
        **tracker,
    }
    return make_config(
        "tracked",
        {
            "trainer": {
                "default_root_dir": str(root),
                "logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": str(root)},
                },
                "callbacks": [
                    {"class_path": "groundglass.dreambooth.fidelity.FidelityTracker", "init_args": args}
                ],
            },
            "model": model or {},
        },
        root=root,
        prior=False,
        steps=3,
    )


def test_tracker_logs_clip_and_dino_and_keeps_the_best_step(
    make_config, judge_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = tmp_path / "run"
    config = _tracked_config(make_config, judge_dirs, root, tolerance=0.02)
    assert run_in_process(["--config", str(config)]) == 0

    record = json.loads((root / "fidelity.json").read_text())
    history = record["history"]
    assert [e["step"] for e in history] == [0, 1, 2, 3]
    for entry in history:
        assert {"clip_i", "clip_t", "dino"} <= set(entry)
        assert all(-1.0 <= entry[k] <= 1.0 for k in ("clip_i", "clip_t", "dino"))
    # the documented criterion: highest DINO among steps whose CLIP-T is within 0.02 of the base model's
    assert (record["select"], record["guard"], record["tolerance"]) == ("dino", "clip_t", 0.02)
    assert record["criterion"] == "highest dino among steps with clip_t >= base model's clip_t - 0.02"
    eligible = [e for e in history[1:] if e["clip_t"] >= history[0]["clip_t"] - 0.02]
    expected = max(eligible, key=lambda e: e["dino"])["step"] if eligible else None
    assert record["best_step"] == expected
    assert (root / "checkpoints" / "best.ckpt").is_file() == (expected is not None)

    scalars: dict[str, list[tuple[int, float]]] = {}
    for events in root.glob("lightning_logs/version_*/events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    for metric in ("clip_i", "clip_t", "dino"):
        logged = sorted(scalars[f"fidelity/{metric}"])
        assert [s for s, _ in logged] == [0, 1, 2, 3]
        assert [v for _, v in logged] == pytest.approx([e[metric] for e in history], abs=1e-6)
    if expected is not None:
        assert sorted(scalars["fidelity/best_step"])[-1][1] == expected


def test_tracker_follows_an_sdxl_run(
    make_config, judge_dirs: dict[str, Path], tiny_sdxl_dir: Path, tmp_path: Path
) -> None:
    """Fidelity tracking draws with SDXL's two encoders and size conditioning like any sampling."""
    root = tmp_path / "sdxl-run"
    config = _tracked_config(make_config, judge_dirs, root, model={"base_model": str(tiny_sdxl_dir)})
    assert run_in_process(["--config", str(config)]) == 0
    history = json.loads((root / "fidelity.json").read_text())["history"]
    assert [e["step"] for e in history] == [0, 1, 2, 3]
    assert all(-1.0 <= e[k] <= 1.0 for e in history for k in ("clip_i", "clip_t", "dino"))


def test_tracker_settings_are_checked_before_training(
    make_config, judge_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from groundglass.dreambooth.fidelity import FidelityTracker

    def bad(**tracker: object) -> str:
        root = tmp_path / "bad"
        code = run_in_process(["--config", str(_tracked_config(make_config, judge_dirs, root, **tracker))])
        err = capsys.readouterr().err
        assert code == 2, err[-3000:]
        assert "Traceback" not in err
        assert not (root / "checkpoints").exists()  # nothing trained
        return err

    err = bad(dino_model=str(tmp_path / "no-dino-here"))
    assert "FidelityTracker init_args.dino_model" in err and "safe_serialization=True" in err
    err = bad(clip_model=None, guard="clip_t")
    assert "guard='clip_t' is not measured" in err and "clip_model for clip_i/clip_t" in err
    with pytest.raises(GroundglassError, match="nothing to measure"):
        FidelityTracker()
    tracker = FidelityTracker(clip_model=str(judge_dirs["clip"]))
    assert (tracker.select, tracker.guard) == ("clip_i", "clip_t")
    assert FidelityTracker(dino_model=str(judge_dirs["dino"])).criterion == "highest dino"


def test_tracker_draws_with_the_ema_weights_and_puts_the_live_ones_back(
    make_config, judge_dirs: dict[str, Path], tmp_path: Path
) -> None:
    import yaml

    from groundglass.dreambooth.sample import generate
    from groundglass.dreambooth.trained import load_trained

    root = tmp_path / "ema-run"
    config = _tracked_config(make_config, judge_dirs, root, clip_model=None, every_n_steps=0)
    settings = yaml.safe_load(config.read_text())
    settings["model"]["ema"] = {"decay": 0.5}
    config.write_text(yaml.safe_dump(settings))
    assert run_in_process(["--config", str(config)]) == 0
    final = json.loads((root / "fidelity.json").read_text())["history"][-1]
    assert final["step"] == 3

    dino = judges.DinoJudge.load(str(judge_dirs["dino"]), local_files_only=True)
    photos = sorted(Path(settings["data"]["instance_data_dir"]).iterdir())
    instances = [Image.open(p).convert("RGB") for p in photos]
    prompts = [p for p in settings["trainer"]["callbacks"][0]["init_args"]["prompts"] for _ in (0, 1)]

    def judged(use_ema: bool) -> float:
        components, _ = load_trained(root / "checkpoints" / "last.ckpt", use_ema=use_ema)
        images = generate(
            components,
            prompts,
            seeds=[0, 1, 0, 1],
            steps=2,
            guidance_scale=2.0,
            height=32,
            width=32,
            batch_size=8,
        )
        return judges.dino(dino, images, instances)

    assert final["dino"] == pytest.approx(judged(use_ema=True), abs=1e-4)
    assert abs(judged(use_ema=False) - final["dino"]) > 1e-4  # the live weights differ, and were saved
