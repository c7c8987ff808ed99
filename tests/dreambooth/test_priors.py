"""Class-image generation: count, manifest, per-image seeds, resume, CLI, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from groundglass.cli import main
from groundglass.dreambooth.priors import MANIFEST_NAME, class_image_name, ensure_class_images
from groundglass.errors import GroundglassError

SETTINGS = {
    "resolution": 32,
    "steps": 2,
    "guidance_scale": 5.0,
    "batch_size": 2,
    "seed": 100,
    "progress": False,
    "local_files_only": True,
}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUNDGLASS_HOME", str(tmp_path / "home"))


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_generates_missing_images_reproducibly_and_resumes(tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    class_dir = tmp_path / "class"
    made = ensure_class_images(str(tiny_pipeline_dir), "a photo of dog", class_dir, 5, **SETTINGS)
    assert made == 5
    names = [class_image_name(k) for k in range(5)]
    assert sorted(p.name for p in class_dir.glob("*.png")) == names
    lines = (class_dir / MANIFEST_NAME).read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["file"] for e in entries] == names
    assert [e["seed"] for e in entries] == [100, 101, 102, 103, 104]
    assert {(e["prompt"], e["steps"], e["guidance_scale"], e["scheduler"], e["model"]) for e in entries} == {
        ("a photo of dog", 2, 5.0, "ddim", str(tiny_pipeline_dir))
    }
    with Image.open(class_dir / names[3]) as image:
        assert image.size == (32, 32)
        assert image.text["seed"] == "103" and image.text["prompt"] == "a photo of dog"
    assert len({pixels(class_dir / n).tobytes() for n in names}) == 5  # one seed per image

    # Delete one image: a rerun regenerates exactly that one, from the same seed, and keeps the others.
    original = pixels(class_dir / names[2])
    kept_mtimes = {n: (class_dir / n).stat().st_mtime_ns for n in names if n != names[2]}
    (class_dir / names[2]).unlink()
    assert ensure_class_images(str(tiny_pipeline_dir), "a photo of dog", class_dir, 5, **SETTINGS) == 1
    assert np.abs(pixels(class_dir / names[2]) - original).max() <= 2  # alone now, in a batch of 2 before
    assert {n: (class_dir / n).stat().st_mtime_ns for n in kept_mtimes} == kept_mtimes
    assert len((class_dir / MANIFEST_NAME).read_text().splitlines()) == 5

    # The user's own images count; only the shortfall is generated, at the next free index.
    Image.new("RGB", (40, 40), "red").save(class_dir / "my-dog.jpg")
    assert ensure_class_images(str(tiny_pipeline_dir), "a photo of dog", class_dir, 7, **SETTINGS) == 1
    assert (class_dir / class_image_name(5)).is_file() and not (class_dir / class_image_name(6)).exists()
    assert json.loads((class_dir / MANIFEST_NAME).read_text().splitlines()[-1])["seed"] == 105


def test_enough_images_means_no_model_is_loaded(tmp_path: Path) -> None:
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    for k in range(3):
        Image.new("RGB", (8, 8)).save(class_dir / f"own-{k}.png")
    # The base model does not exist: it would fail if it were loaded.
    assert ensure_class_images(str(tmp_path / "no-model"), "a photo of dog", class_dir, 3, **SETTINGS) == 0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"num_images": -1}, "num_class_images must be 0 or more"),
        ({"scheduler": "plms"}, "unknown scheduler"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"resolution": 33}, "height must be a positive multiple of 8"),
        ({"class_prompt": "  "}, "class prompt is empty"),
        ({"pretrained": "/no/such/model"}, "does not exist"),
    ],
)
def test_bad_input_is_named(tiny_pipeline_dir: Path, tmp_path: Path, kwargs: dict, expected: str) -> None:
    args = {
        "pretrained": str(tiny_pipeline_dir),
        "class_prompt": "a photo of dog",
        "class_dir": tmp_path / "c",
        "num_images": 2,
        **SETTINGS,
        **kwargs,
    }
    with pytest.raises(GroundglassError, match=expected):
        ensure_class_images(**args)


def test_priors_cli(tiny_pipeline_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class_dir = tmp_path / "dog-class"
    argv = [
        "dreambooth",
        "priors",
        "--base-model",
        str(tiny_pipeline_dir),
        "--class-prompt",
        "a photo of dog",
        "--class-data-dir",
        str(class_dir),
        "--num-class-images",
        "3",
        "--resolution",
        "32",
        "--steps",
        "2",
        "--batch-size",
        "3",
        "--scheduler",
        "euler",
        "--local-files-only",
        "--quiet",
    ]
    main(argv)
    assert "generated 3 class images, kept 0; 3 in total" in capsys.readouterr().out
    assert {
        json.loads(line)["scheduler"] for line in (class_dir / MANIFEST_NAME).read_text().splitlines()
    } == {"euler"}
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main([*argv[:7], str(blocker / "sub"), *argv[8:]])
    assert exc.value.code == 2
    assert "error: cannot create class image folder" in capsys.readouterr().err
