"""The toy world: generator, shipped base model, measurement model and metrics, and the demo (reduced)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from groundglass.dreambooth.world import metrics
from groundglass.dreambooth.world.generator import ALL_SHAPES, WORDS, Scene, make_examples, render
from groundglass.dreambooth.world.personalise import BASE_MODEL_DIR, RunSettings


def test_generator_is_deterministic_and_captions_describe_the_image() -> None:
    images, scenes, captions = make_examples(24, seed=3)
    again, scenes_again, captions_again = make_examples(24, seed=3)
    other, _, _ = make_examples(24, seed=4)
    assert images.shape == (24, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and scenes == scenes_again and captions == captions_again
    assert not np.array_equal(images, other)
    for scene, caption in zip(scenes, captions, strict=True):
        words = caption.split()
        assert words[:3] == ["a", "photo", "of"]
        assert scene.shape in words or "shape" in words
        named_colours = [w for w in words if w in ("red", "green", "blue", "yellow", "purple", "orange")]
        assert named_colours in ([], [scene.colour])


def test_render_draws_the_colour_at_the_object_centre() -> None:
    scene = Scene("square", "blue", "large", "plain", 0.5, 0.5)
    pixel = np.asarray(render(scene, np.random.default_rng(0)))[16, 16]
    assert tuple(pixel) == (30, 70, 230)


def test_base_model_loads_like_a_stable_diffusion_folder() -> None:
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    from groundglass.dreambooth.model import load_components
    from groundglass.dreambooth.sample import generate

    components = load_components(str(BASE_MODEL_DIR), local_files_only=True)
    for word in WORDS:
        assert len(components.tokenizer.tokenize(word)) == 1, word
    images = generate(components, ["a photo of a red circle"], seeds=[0], steps=4, guidance_scale=4.0)
    assert images[0].size == (32, 32)
    pipe = StableDiffusionPipeline.from_pretrained(str(BASE_MODEL_DIR), local_files_only=True)
    assert pipe.unet.config.sample_size == 8 and pipe.vae.config.latent_channels == 4
    # stored as float16 (a few MB), loaded as float32 by our loader and by diffusers alike
    for part in ("unet", "vae", "text_encoder"):
        (path,) = (BASE_MODEL_DIR / part).glob("*.safetensors")
        with safe_open(str(path), "pt") as handle:
            names = handle.keys()
            assert {handle.get_slice(k).get_dtype() for k in names} == {"F16"}, part
        for model in (getattr(components, part), getattr(pipe, part)):
            assert {p.dtype for p in model.parameters()} == {torch.float32}, part
    weights = sum(p.stat().st_size for p in BASE_MODEL_DIR.rglob("*.safetensors"))
    assert weights < 11 * 2**20


def test_shipped_vae_round_trips_every_shape_the_star_included() -> None:
    from groundglass.dreambooth.world.personalise import load_base
    from groundglass.dreambooth.world.vae_tune import shape_accuracy

    images, scenes, _ = make_examples(120, seed=4321, shapes=ALL_SHAPES)
    accuracy = shape_accuracy(load_base().vae, images, [s.shape for s in scenes])
    assert set(accuracy) == set(ALL_SHAPES)
    assert min(accuracy.values()) >= 0.9, accuracy  # the star was 0.41 before the decoder learned it


def test_decoder_tuning_leaves_the_encoder_and_its_latents_alone() -> None:
    import torch

    from groundglass.dreambooth.world.classifier import to_tensor
    from groundglass.dreambooth.world.personalise import load_base
    from groundglass.dreambooth.world.vae_tune import tune_decoder

    vae = load_base().vae
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    pixels = to_tensor(make_examples(4, seed=1, shapes=ALL_SHAPES)[0])
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mean
    tune_decoder(vae, steps=2, batch=4, lr=1e-3, images=16, seed=0, log=lambda _: None)
    after = vae.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"decoder"} or changed == {"decoder", "post_quant_conv"}
    with torch.no_grad():
        assert torch.equal(vae.encode(pixels).latent_dist.mean, latents)


def test_classifier_reads_fresh_world_images() -> None:
    images, scenes, _ = make_examples(120, seed=999, shapes=ALL_SHAPES)
    labels = metrics.classify(images)
    for attribute in ("shape", "colour", "background"):
        accuracy = np.mean(
            [lab[attribute] == getattr(s, attribute) for lab, s in zip(labels, scenes, strict=True)]
        )
        assert accuracy > 0.9, (attribute, accuracy)


def test_metrics_on_known_cases() -> None:
    red_circle = render(Scene("circle", "red", "large", "plain", 0.5, 0.5), np.random.default_rng(0))
    blue_cross = render(Scene("cross", "blue", "large", "grid", 0.4, 0.6), np.random.default_rng(1))
    # identical images are identical
    assert metrics.subject_fidelity([red_circle], [red_circle]) == pytest.approx(1.0, abs=1e-5)
    assert metrics.diversity({"p": [red_circle, red_circle]}) == pytest.approx(0.0, abs=1e-5)
    assert metrics.subject_fidelity([blue_cross], [red_circle]) < 0.9
    assert metrics.diversity({"p": [red_circle, blue_cross]}) > 0.1
    # requested attributes present or missing
    assert metrics.requested_attributes("a photo of a blue sks shape on a grid background") == {
        "colour": "blue",
        "background": "grid",
    }
    assert metrics.prompt_fidelity([red_circle], ["a photo of a red circle on a plain background"]) == 1.0
    assert metrics.prompt_fidelity([red_circle], ["a photo of a blue circle on a grid background"]) == (
        pytest.approx(1 / 3)
    )
    assert metrics.prompt_fidelity([red_circle, blue_cross], ["a photo of a blue shape"] * 2) == 0.5
    assert math.isnan(metrics.prompt_fidelity([red_circle], ["a photo of a sks shape"]))


def test_a_world_without_the_held_out_pairs_still_shows_every_shape_and_colour() -> None:
    from groundglass.dreambooth.world.generator import COLOUR_NAMES, HELD_OUT_PAIRS, SHAPES

    _, scenes, _ = make_examples(600, seed=7, exclude=HELD_OUT_PAIRS)
    pairs = {(s.shape, s.colour) for s in scenes}
    assert not pairs & HELD_OUT_PAIRS
    assert {s for s, _ in pairs} == set(SHAPES) and {c for _, c in pairs} == set(COLOUR_NAMES)
    _, full, _ = make_examples(600, seed=7)
    assert {(s.shape, s.colour) for s in full} & HELD_OUT_PAIRS  # the default world has them all


def test_identity_tells_the_star_from_other_orange_shapes() -> None:
    from groundglass.dreambooth.world.generator import NOVEL_SHAPE, SHAPES, random_scene

    rng = np.random.default_rng(5)

    def draw(n: int, shapes: tuple[str, ...], colours: tuple[str, ...] | None = None) -> list:
        return [
            render(random_scene(rng, shapes=shapes, **({"colours": colours} if colours else {})), rng)
            for _ in range(n)
        ]

    stars = draw(24, (NOVEL_SHAPE,))
    orange_stars = draw(12, (NOVEL_SHAPE,), ("orange",))
    orange_others = draw(24, SHAPES, ("orange",))
    assert metrics.identity(stars) >= 0.9  # any colour, any background
    assert metrics.identity(orange_stars) >= 0.9
    assert metrics.identity(orange_others) <= 0.05
    assert metrics.identity(stars[:4] + orange_others[:4]) == pytest.approx(metrics.identity(stars[:4]) / 2)
    assert math.isnan(metrics.identity([]))
    # the embedding score cannot make this distinction as sharply: orange shapes embed close to the star
    instances = draw(4, (NOVEL_SHAPE,), ("orange",))
    fidelity_gap = metrics.subject_fidelity(orange_stars, instances) - metrics.subject_fidelity(
        orange_others, instances
    )
    identity_gap = metrics.identity(orange_stars) - metrics.identity(orange_others)
    assert identity_gap > fidelity_gap


def test_the_star_judge_agrees_with_the_eye_on_generated_images_where_the_classifier_did_not() -> None:
    from groundglass.dreambooth.world.star_judge import agreement, is_star, judged_set

    images, entries = judged_set()
    assert len(entries) == len(images) >= 250
    said = is_star(images)
    for part in ("first", "second", "third"):  # the third was labelled after the judge was fixed
        keep = [i for i, e in enumerate(entries) if e["set"] == part]
        score = agreement([said[i] for i in keep], [entries[i] for i in keep])
        assert score["accuracy"] >= 0.85 and score["false_stars"] <= 0.1, (part, score)
        assert score["recall"] >= 0.75, (part, score)
    judge = agreement(said, entries)
    shape_head = agreement([label["shape"] == "star" for label in metrics.classify(images)], entries)
    assert judge["accuracy"] - shape_head["accuracy"] >= 0.2, (judge, shape_head)
    assert shape_head["false_stars"] >= 0.25  # what made the old identity figures wrong: blobs as stars
    # colour-blind: the same images with their colour channels swapped are judged the same
    assert is_star(images[..., ::-1].copy()) == said
    assert is_star(images[..., [1, 2, 0]].copy()) == said


def test_layout_diversity_counts_placement_among_images_that_agree() -> None:
    def red_circle(x: float, y: float, size: str = "large") -> object:
        return render(Scene("circle", "red", size, "plain", x, y), np.random.default_rng(0))

    same = red_circle(0.5, 0.5)
    assert metrics.layout_diversity({"p": [same, same]}) == pytest.approx(0.0, abs=1e-6)
    near = metrics.layout_diversity({"p": [red_circle(0.45, 0.5), red_circle(0.55, 0.5)]})
    apart = metrics.layout_diversity(
        {"p": [red_circle(0.38, 0.38), red_circle(0.62, 0.62), red_circle(0.4, 0.6, "small")]}
    )
    assert 0.0 < near < apart
    # a pair that disagrees on what it shows is an error, not diversity: nothing to measure
    blue_cross = render(Scene("cross", "blue", "large", "grid", 0.4, 0.6), np.random.default_rng(1))
    assert math.isnan(metrics.layout_diversity({"p": [same, blue_cross]}))
    assert metrics.layout_diversity({"p": [same, blue_cross, same]}) == pytest.approx(0.0, abs=1e-6)


def test_demo_runs_reduced(tmp_path: Path) -> None:
    from PIL import Image

    from groundglass.dreambooth.world.demo import run_demo

    result = run_demo(
        tmp_path / "demo",
        settings=RunSettings(steps=2, num_class_images=2),
        seeds=[1, 2],
        progress=False,
        log=lambda _: None,
    )
    out = tmp_path / "demo"
    assert (out / "run" / "checkpoints" / "last.ckpt").is_file()
    assert len(list((out / "class_images").glob("*.png"))) == 2
    with Image.open(out / "grid.png") as grid:
        # instances, the base model, the plain prompt, 3 backgrounds, 3 colours, the class, named shapes
        assert grid.height == 11 * (96 + 4)
    saved = json.loads((out / "metrics.json").read_text())
    for model in ("base", "personalised"):
        assert {"subject_fidelity", "prompt_fidelity", "pres", "div"} <= set(saved[model])
        layout = saved[model].pop("div_layout")  # NaN when no two images of a prompt agree
        assert math.isnan(layout) or 0.0 <= layout <= 1.0
        assert all(math.isfinite(v) for v in saved[model].values())
    assert result["settings"]["steps"] == 2
    assert "subject fidelity" in (out / "metrics.md").read_text()


@pytest.mark.slow
def test_demo_learns_the_star_and_keeps_the_named_shapes(tmp_path: Path) -> None:
    """The default demo (2-3 minutes on 2 cores): the personalised model draws the star where the base
    never does, follows the colours and backgrounds asked for, and still draws "a photo of a red
    circle" as the base model does. Bounds from three seeds of the default (star judge): plain
    0.63-0.75, new background 0.58-0.83, named shapes 1.0. A recoloured star ("a photo of a blue sks
    shape") is not asked for: no setting tried draws one (see the README's toy-world ablation).
    """
    from groundglass.dreambooth.world.demo import run_demo

    result = run_demo(tmp_path / "demo", progress=False, log=lambda _: None)
    base, personal = result["base"], result["personalised"]
    for key in ("identity_plain", "identity_recontext", "identity_property", "class_identity"):
        assert base[key] <= 0.1, key  # the base model has never seen a star (the judge errs on ~6%)
    assert personal["identity_plain"] >= 0.5 and personal["identity_recontext"] >= 0.5
    assert personal["background_followed"] >= 0.9 and personal["colour_followed"] >= 0.9
    assert personal["class_identity"] <= 0.25  # the class prompt has not become the star
    for key in ("prior_shape_accuracy", "prior_colour_accuracy"):  # within 10 points of the base
        assert personal[key] >= base[key] - 0.1, key


def test_demo_command_rejects_bad_steps(capsys: pytest.CaptureFixture[str]) -> None:
    from groundglass.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["dreambooth", "demo", "--train-steps", "0"])
    assert exc.value.code == 2
    assert "--train-steps must be at least 1" in capsys.readouterr().err


def test_demo_command_rejects_bad_threads(capsys: pytest.CaptureFixture[str]) -> None:
    from groundglass.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["dreambooth", "demo", "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_demo_command_rejects_an_unknown_lr_scheduler(capsys: pytest.CaptureFixture[str]) -> None:
    from groundglass.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["dreambooth", "demo", "--lr-scheduler", "linear"])
    assert exc.value.code == 2
    assert "--lr-scheduler must be cosine or constant" in capsys.readouterr().err


def test_fidelity_tracking_logs_every_n_steps_and_keeps_the_best(tmp_path: Path) -> None:
    from judge_models import build_clip, build_dino

    from groundglass.dreambooth.world.personalise import personalise

    # the world's own measurements, plus CLIP/DINO (tiny random ones here), one of which picks the step
    clip, dino = build_clip(tmp_path / "clip"), build_dino(tmp_path / "dino")
    tracking = {
        "clip_model": str(clip),
        "dino_model": str(dino),
        "select": "dino",
        "guard": "identity_recontext",
        "seeds": [100, 101],
    }
    settings = RunSettings(steps=2, num_class_images=2, track_every=1, tracking=tracking)
    checkpoints = personalise(tmp_path / "run", settings, progress=False)
    record = json.loads((tmp_path / "run" / "fidelity.json").read_text())
    assert [entry["step"] for entry in record["history"]] == [0, 1, 2]
    for entry in record["history"]:
        assert {"subject_fidelity", "prompt_fidelity", "pres", "div", "clip_i", "clip_t", "dino"} <= set(
            entry
        )
    assert record["criterion"] == (
        "highest dino among steps with identity_recontext >= base model's identity_recontext - 0.1"
    )
    base = record["history"][0]["identity_recontext"]
    eligible = [e for e in record["history"][1:] if e["identity_recontext"] >= base - 0.1]
    if eligible:
        best = max(eligible, key=lambda e: e["dino"])
        assert record["best_step"] == best["step"]
        assert (checkpoints / "best.ckpt").is_file()
    else:
        assert record["best_step"] is None


def test_training_set_captions_each_photo_with_its_colour_and_background(tmp_path: Path) -> None:
    from PIL import Image

    from groundglass.dreambooth.world.personalise import fit_config
    from groundglass.dreambooth.world.subject import instance_paths, write_training_set

    folder = write_training_set(tmp_path / "photos", captions=True, recolours=("red",))
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == [f"star-{k}.png" for k in range(4)] + [f"star-red-{k}.png" for k in range(4)]
    for path in instance_paths():  # the subject's own photos, unchanged
        assert (folder / path.name).read_bytes() == path.read_bytes()
    assert (folder / "star-2.txt").read_text().splitlines() == [
        "a photo of a sks shape",
        "a photo of a sks shape on a striped background",
        "a photo of a orange sks shape",
        "a photo of a orange sks shape on a striped background",
    ]
    # a recoloured photo always names its colour: without one, the identifier means the orange star
    assert (folder / "star-red-2.txt").read_text().splitlines() == [
        "a photo of a red sks shape",
        "a photo of a red sks shape on a striped background",
    ]
    coloured = write_training_set(tmp_path / "coloured", captions=True, uncoloured=False)
    assert (coloured / "star-2.txt").read_text().splitlines() == [
        "a photo of a orange sks shape",
        "a photo of a orange sks shape on a striped background",
    ]
    # the same photo recoloured: the background is the same, the star is red where it was orange
    with Image.open(folder / "star-0.png") as a, Image.open(folder / "star-red-0.png") as b:
        orange, red = np.asarray(a.convert("RGB"), np.int16), np.asarray(b.convert("RGB"), np.int16)
    differs = np.abs(orange - red).sum(-1) > 0
    assert 0.1 < differs.mean() < 0.6
    assert (red[differs][:, 0] > red[differs][:, 1] + 40).mean() > 0.9

    config = fit_config(
        tmp_path / "run", RunSettings(instance_captions=True), class_dir=tmp_path / "class_images"
    )
    assert config["data"]["instance_data_dir"] == str(tmp_path / "run" / "instances")
    assert config["data"]["instance_captions"] is True
    plain = fit_config(tmp_path / "run", RunSettings(instance_captions=False), class_dir=tmp_path / "c")
    assert plain["data"]["instance_data_dir"] == str(BASE_MODEL_DIR.parent / "subject")


def test_identifier_can_start_as_the_mean_of_words(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import CLIPTokenizer

    from groundglass.dreambooth.world.identifier import base_with_identifier_from

    words = ("circle", "cross")
    out = base_with_identifier_from(BASE_MODEL_DIR, words, tmp_path / "base")
    tokenizer = CLIPTokenizer.from_pretrained(BASE_MODEL_DIR / "tokenizer")
    sks, circle, cross = (tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w))[0] for w in ("sks", *words))
    key = "embeddings.token_embedding.weight"
    before = load_file(BASE_MODEL_DIR / "text_encoder" / "model.safetensors")[key].float()
    after = load_file(out / "text_encoder" / "model.safetensors")[key].float()
    # untrained, sks is shorter than any trained word; now it points between the words, at their length
    assert before[sks].norm() < 0.6 * before[[circle, cross]].norm(dim=1).mean()
    mean = (before[circle] + before[cross]) / 2
    torch.testing.assert_close(after[sks] / after[sks].norm(), mean / mean.norm(), atol=2e-3, rtol=0)
    assert after[sks].norm() == pytest.approx(float(before[[circle, cross]].norm(dim=1).mean()), rel=1e-2)
    others = [i for i in range(len(before)) if i != sks]
    assert torch.equal(after[others], before[others])  # the base model itself is unchanged
    with pytest.raises(ValueError, match="one token"):
        base_with_identifier_from(BASE_MODEL_DIR, ("backpack",), tmp_path / "bad")


def test_the_extra_shapes_are_drawn_each_unlike_the_others_and_the_star() -> None:
    from groundglass.dreambooth.world.generator import EXTRA_SHAPES, world_words

    def mask(shape: str) -> np.ndarray:
        image = render(Scene(shape, "red", "large", "plain", 0.5, 0.5), np.random.default_rng(0), size=32)
        rgb = np.asarray(image, np.int16)
        return (rgb[..., 0] - rgb[..., 1]) > 60  # red on grey

    masks = {shape: mask(shape) for shape in (*ALL_SHAPES, *EXTRA_SHAPES)}
    for shape in EXTRA_SHAPES:
        assert 40 < masks[shape].sum() < 600, shape
        for other, m in masks.items():
            if other != shape:
                overlap = (masks[shape] & m).sum() / (masks[shape] | m).sum()
                assert overlap < 0.85, (shape, other, overlap)
    words = world_words((*EXTRA_SHAPES, "circle"))
    assert words[: len(WORDS)] == WORDS and words[len(WORDS) :] == EXTRA_SHAPES


def test_a_run_can_train_lora_adapters_on_the_layers_it_names(tmp_path: Path) -> None:
    from groundglass.dreambooth.world.personalise import fit_config

    lora = {"rank": 64, "unet_target_modules": ["attn2.to_k", "attn2.to_v"]}
    config = fit_config(tmp_path / "run", RunSettings(lora=lora), class_dir=tmp_path / "c")
    assert config["model"]["lora"] == lora
    assert fit_config(tmp_path / "run", RunSettings(), class_dir=tmp_path / "c")["model"]["lora"] is None
