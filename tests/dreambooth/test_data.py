"""Data: image validation (every bad file listed), prompts, augmentation, and the seeded stream."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from groundglass.dreambooth.data import (
    DreamBoothDataModule,
    DreamBoothStream,
    ImageSet,
    augment,
    check_prompts,
    load_image,
    scan_images,
)
from groundglass.dreambooth.seeding import generator
from groundglass.errors import GroundglassError


def test_every_bad_file_is_listed_in_one_error(tmp_path: Path, instance_dir: Path) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(instance_dir, folder)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    good = (folder / "chelsea.png").read_bytes()
    (folder / "truncated.jpg").write_bytes(b"")
    Image.open(folder / "coffee.png").save(folder / "cut.jpg")
    (folder / "cut.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:300])
    Image.new("RGB", (10, 12), "red").save(folder / "tiny.png")
    (folder / "photo.heic").write_bytes(good)
    (folder / "priors.jsonl").write_text("{}\n")  # sidecar files are fine
    (folder / ".DS_Store").write_bytes(b"x")
    (folder / "notes").mkdir()
    with pytest.raises(GroundglassError) as info:
        scan_images(folder, setting="data.instance_data_dir", min_size=16)
    text = str(info.value)
    assert "5 file(s)" in text
    for name in ("corrupt.png", "truncated.jpg", "cut.jpg", "tiny.png", "photo.heic"):
        assert name in text
    assert "too small (10x12 px" in text and "unsupported format (.heic)" in text
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "priors.jsonl", "DS_Store", "notes"):
        assert name not in text
    # Removing the bad files leaves the three photos.
    for name in ("corrupt.png", "truncated.jpg", "cut.jpg", "tiny.png", "photo.heic"):
        (folder / name).unlink()
    assert [p.name for p in scan_images(folder, setting="x", min_size=16)] == [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
    ]


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(GroundglassError, match="does not exist") as info:
        scan_images(tmp_path / "nope", setting="data.instance_data_dir", min_size=8)
    assert "data.instance_data_dir" in str(info.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(GroundglassError, match="has no images"):
        scan_images(tmp_path / "empty", setting="data.instance_data_dir", min_size=8)


def test_prompt_must_name_the_identifier(tiny_pipeline_dir: Path) -> None:
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_pipeline_dir / "tokenizer")
    with pytest.raises(GroundglassError, match="does not contain the identifier 'sks'"):
        check_prompts("a photo of my dog", "sks", None, tokenizer)
    with pytest.raises(GroundglassError):
        check_prompts("a photo of sksdog", "sks", None, tokenizer)  # a word, not a substring
    with pytest.warns(UserWarning, match="is 4 tokens"):
        check_prompts("a photo of zxqv dog", "zxqv", None, tokenizer)
    with pytest.warns(UserWarning, match="class_prompt"):
        check_prompts("a photo of sks dog", "sks", "a photo of sks dog", tokenizer)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_prompts("a photo of sks dog", "sks", "a photo of a dog", tokenizer)  # no warning


def test_load_and_augment(instance_dir: Path) -> None:
    image = load_image(instance_dir / "coffee.png", 32)  # 48x40 -> short side 32
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 32, 38)
    centre = augment(image, 32, center_crop=True, random_flip=False, gen=generator(0))
    assert tuple(centre.shape) == (3, 32, 32) and float(centre.min()) >= -1.0 and float(centre.max()) <= 1.0
    torch.testing.assert_close(centre, image[:, :, 3:35].float() / 127.5 - 1)
    crops = {
        augment(image, 32, center_crop=False, random_flip=False, gen=generator(k)).sum().item()
        for k in range(20)
    }
    assert len(crops) > 1  # random crops differ
    flips = [augment(image, 32, center_crop=True, random_flip=True, gen=generator(k)) for k in range(20)]
    flipped = [torch.equal(f, centre.flip(-1)) for f in flips]
    unflipped = [torch.equal(f, centre) for f in flips]
    assert any(flipped) and any(unflipped) and all(a or b for a, b in zip(flipped, unflipped, strict=True))


def _stream(instance_dir: Path, class_dir: Path, **kwargs) -> DreamBoothStream:
    instances = ImageSet(
        [load_image(p, 32) for p in sorted(instance_dir.glob("*.png"))], "a photo of sks cat"
    )
    classes = ImageSet([load_image(p, 32) for p in sorted(class_dir.glob("*.png"))], "a photo of a cat")
    defaults = {"resolution": 32, "batch_size": 1, "seed": 0, "center_crop": False, "random_flip": True}
    return DreamBoothStream(instances, classes, **{**defaults, **kwargs})


def test_stream_is_a_pure_function_of_seed_and_position(instance_dir: Path, class_dir: Path) -> None:
    a = _stream(instance_dir, class_dir)
    b = _stream(instance_dir, class_dir)
    first = [a.batch(m) for m in range(6)]
    for m, batch in enumerate(first):
        again = b.batch(m)
        assert torch.equal(batch["instance_pixels"], again["instance_pixels"])
        assert batch["instance_seeds"] == again["instance_seeds"]
        assert batch["class_seeds"] == again["class_seeds"]
    # Starting later (a resume) yields the same batches as the straight run from there on.
    resumed = iter(_stream(instance_dir, class_dir, start=3))
    for m in range(3, 6):
        got = next(resumed)
        assert got["step_index"] == m and torch.equal(got["instance_pixels"], first[m]["instance_pixels"])
    # Each epoch shows every instance image once, in a seed-dependent order.
    indices = [i for batch in first for i in batch["instance_indices"]]
    assert sorted(indices[:3]) == [0, 1, 2] and sorted(indices[3:6]) == [0, 1, 2]
    other_seed = _stream(instance_dir, class_dir, seed=1)
    assert [other_seed.batch(m)["instance_seeds"] for m in range(3)] != [
        first[m]["instance_seeds"] for m in range(3)
    ]


def test_two_ranks_see_what_one_process_with_their_joint_batch_sees(
    instance_dir: Path, class_dir: Path
) -> None:
    single = _stream(instance_dir, class_dir, batch_size=2)
    ranks = [_stream(instance_dir, class_dir, batch_size=1, rank=r, world_size=2) for r in range(2)]
    for m in range(4):
        joint = single.batch(m)
        parts = [rank.batch(m) for rank in ranks]
        for kind in ("instance", "class"):
            joined = torch.cat([p[f"{kind}_pixels"] for p in parts])
            torch.testing.assert_close(joined, joint[f"{kind}_pixels"])
            assert [s for p in parts for s in p[f"{kind}_seeds"]] == joint[f"{kind}_seeds"]


def test_datamodule_settings_are_checked(instance_dir: Path) -> None:
    with pytest.raises(GroundglassError, match=r"prior preservation needs data\.class_prompt"):
        DreamBoothDataModule(str(instance_dir), "a photo of sks cat", resolution=32)
    with pytest.raises(GroundglassError, match="multiple of 8"):
        DreamBoothDataModule(
            str(instance_dir), "a photo of sks cat", resolution=30, with_prior_preservation=False
        )
    dm = DreamBoothDataModule(
        str(instance_dir), "a photo of sks cat", resolution=32, with_prior_preservation=False
    )
    dm.setup("fit")
    batch = next(iter(dm.stream()))
    assert tuple(batch["instance_pixels"].shape) == (1, 3, 32, 32) and "class_pixels" not in batch
    assert batch["instance_prompts"] == ["a photo of sks cat"]


def test_too_few_class_images_is_an_error_when_generation_is_done(
    tmp_path: Path, instance_dir: Path, class_dir: Path
) -> None:
    dm = DreamBoothDataModule(
        str(instance_dir),
        "a photo of sks cat",
        class_prompt="a photo of a cat",
        class_data_dir=str(class_dir),
        num_class_images=9,
        resolution=32,
    )
    with pytest.raises(GroundglassError, match=r"has 4 images, data\.num_class_images asks for 9"):
        dm.setup("fit")


def test_each_photo_trains_with_its_own_captions(tmp_path: Path, instance_dir: Path) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(instance_dir, folder)
    (folder / "chelsea.txt").write_text("a photo of sks cat\n\na photo of sks cat on a sofa\n")
    (folder / "coffee.txt").write_text("a photo of sks cat in a cup\n")
    # astronaut.png has no .txt: it keeps the instance prompt

    def module(captions: bool) -> DreamBoothDataModule:
        return DreamBoothDataModule(
            str(folder),
            "a photo of sks thing",
            instance_captions=captions,
            resolution=32,
            batch_size=3,
            with_prior_preservation=False,
        )

    on = module(True)
    stream = on.stream()
    by_image: dict[str, set[str]] = {}
    for m in range(12):
        batch = stream.batch(m)
        for index, prompt in zip(batch["instance_indices"], batch["instance_prompts"], strict=True):
            by_image.setdefault(on.image_sets()["instance"].paths[index].stem, set()).add(prompt)
    assert by_image == {
        "astronaut": {"a photo of sks thing"},
        "chelsea": {"a photo of sks cat", "a photo of sks cat on a sofa"},
        "coffee": {"a photo of sks cat in a cup"},
    }
    # The same example has the same caption in every run (a resume sees what the straight run saw).
    assert [module(True).stream().batch(m)["instance_prompts"] for m in range(4)] == [
        stream.batch(m)["instance_prompts"] for m in range(4)
    ]
    assert set(on.prompts()) == {p for prompts in by_image.values() for p in prompts}
    assert on.fingerprint_fields()["instance_captions"] == [
        [],
        ["a photo of sks cat", "a photo of sks cat on a sofa"],
        ["a photo of sks cat in a cup"],
    ]
    # Off (the default), the .txt files are ignored.
    off = module(False)
    assert {p for m in range(4) for p in off.stream().batch(m)["instance_prompts"]} == {
        "a photo of sks thing"
    }
    assert "instance_captions" not in off.fingerprint_fields()
    (folder / "coffee.txt").write_text("a photo of my cat\n")
    with pytest.raises(GroundglassError, match="'a photo of my cat'"):
        module(True).check()
