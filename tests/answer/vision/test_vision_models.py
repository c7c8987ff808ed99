"""The offline extractors on real photos (scikit-image, scikit-learn) and rendered screenshots:
EfficientNet-Lite0 labels, RapidOCR text, metadata, and the switches in [vision]."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from vision_screens import TERMINAL_ERROR, ZERMATT_SIGN, sign, terminal, word_accuracy

from groundglass.answer.vision import ImageInput, extract_facts
from groundglass.answer.vision.labels import classify, imagenet_classes

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


def rgb(blob: bytes) -> Image.Image:
    return Image.open(io.BytesIO(blob)).convert("RGB")


def test_imagenet_class_names() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0] == ("n01440764", ["tench", "Tinca tinca"])
    assert classes[967] == ("n07920052", ["espresso"])


def test_labels_of_real_photos(photos: dict[str, bytes]) -> None:
    coffee = classify(rgb(photos["coffee"]), top_k=5)
    assert coffee[0].name == "espresso" and coffee[0].score > 0.8
    assert "cup" in [lb.name for lb in coffee]
    assert [lb.score for lb in coffee] == sorted((lb.score for lb in coffee), reverse=True)

    chelsea = classify(rgb(photos["chelsea"]), top_k=5)
    assert chelsea[0].name in CATS
    assert sum(lb.score for lb in chelsea if lb.name in CATS) > 0.7

    rocket = classify(rgb(photos["rocket"]), top_k=3)
    assert {"missile", "projectile", "space shuttle"} & {lb.name for lb in rocket}


def test_labels_of_sklearn_china() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    china = Image.fromarray(datasets.load_sample_image("china.jpg"))
    names = [lb.name for lb in classify(china, top_k=3)]
    assert {"palace", "bell cote", "monastery", "pagoda"} & set(names), names


def test_ocr_reads_a_terminal_screenshot_and_a_sign(vision_settings) -> None:
    settings = vision_settings(vision__labels=False)
    shot, board = terminal(TERMINAL_ERROR), sign(ZERMATT_SIGN)
    shot_facts, sign_facts = extract_facts(
        [ImageInput.from_bytes(shot.png(), "terminal.png"), ImageInput.from_bytes(board.png(), "sign.png")],
        settings,
    )
    error_line = [line for line in shot_facts.lines if "ModuleNotFoundError" in line.text]
    assert error_line and error_line[0].text.startswith("ModuleNotFoundError: No module named 'requests")
    assert error_line[0].score > 0.8
    assert word_accuracy(shot.text, shot_facts.text) >= 0.85, shot_facts.text
    assert [line.text for line in sign_facts.lines] == ["Welcome to", "ZERMATT", "Matterhorn Village"]
    # lines come top to bottom with their boxes; the place name is printed biggest
    heights = [line.box[3] - line.box[1] for line in sign_facts.lines]
    assert heights[1] > 1.3 * max(heights[0], heights[2])
    assert shot_facts.labels == [] and "labels" not in shot_facts.timings and shot_facts.timings["ocr"] > 0


def test_photo_facts_as_json(photos: dict[str, bytes], vision_settings) -> None:
    facts = extract_facts(
        [ImageInput.from_bytes(photos["astronaut"], "astronaut.png")], vision_settings(vision__max_labels=3)
    )[0]
    payload = json.loads(json.dumps(facts.as_dict()))
    assert payload["source"] == "astronaut.png"
    assert len(payload["labels"]) == 3 and all(0 <= lb["score"] <= 1 for lb in payload["labels"])
    assert payload["metadata"] == {
        "format": "PNG",
        "mime": "image/png",
        "width": 512,
        "height": 512,
        "bytes": len(photos["astronaut"]),
        "animated": False,
        "taken_at": None,
        "camera": None,
        "software": None,
    }
    assert payload["caption"] is None and payload["warnings"] == []
    assert set(facts.timings) == {"ocr", "labels"}


def test_extractors_can_be_switched_off(photos: dict[str, bytes], vision_settings) -> None:
    facts = extract_facts(
        [ImageInput.from_bytes(photos["coffee"])], vision_settings(vision__ocr=False, vision__labels=False)
    )[0]
    assert facts.lines == [] and facts.labels == [] and facts.timings == {}
    assert (facts.metadata.width, facts.metadata.height) == (600, 400)
