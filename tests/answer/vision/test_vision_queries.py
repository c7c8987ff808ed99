"""The query rules (queries.py) and OCR spacing repair, on hand-written facts: each rule, one test."""

from __future__ import annotations

import json

from groundglass.answer.vision import VisualFacts, describe, image_queries
from groundglass.answer.vision.labels import Label
from groundglass.answer.vision.metadata import ImageMetadata
from groundglass.answer.vision.ocr import OcrLine, join_rows, repair_spacing
from groundglass.answer.vision.queries import clean_error, image_clues


def facts(
    lines: list[tuple[str, int]] = (),
    labels: list[tuple[str, float]] = (),
    caption: str | None = None,
    source: str = "shot.png",
) -> VisualFacts:
    """Facts with OCR lines given as (text, text height in px) top to bottom."""
    ocr, y = [], 10
    for text, height in lines:
        ocr.append(OcrLine(text, 0.95, (10, y, 10 + 12 * len(text), y + height)))
        y += height + 10
    return VisualFacts(
        source=source,
        metadata=ImageMetadata("PNG", "image/png", 800, 600, 12345),
        lines=ocr,
        labels=[Label(n, s) for n, s in labels],
        caption=caption,
    )


TRACEBACK = [
    ("$ python fetch_prices.py", 20),
    ("Traceback (most recent call last):", 20),
    ('File "/home/ana/shop/fetch_prices.py", line 3, in <module>', 20),
    ("import requests", 20),
    ("ModuleNotFoundError: No module named 'requests'", 20),
]


def test_error_lines_are_cleaned_and_lead() -> None:
    shot = facts(TRACEBACK, labels=[("web site", 0.6)])
    assert image_queries(shot, "how do I fix this?") == [
        "how do I fix ModuleNotFoundError: No module named requests?",
        "ModuleNotFoundError: No module named requests",
    ]
    # no question: the error itself; the screenshot's "web site" label names the medium, not the subject
    assert image_queries(shot) == ["ModuleNotFoundError: No module named requests"]
    assert (
        clean_error("2024-05-01 12:00:03 ERROR segfault at 0x7ffe12ab in /usr/lib/libfoo.so.1 line 42")
        == "ERROR segfault at in"
    )
    assert clean_error(">>> open('/tmp/data/x.csv')  # FileNotFoundError") == "open( ) # FileNotFoundError"


def test_exception_names_outrank_generic_error_words() -> None:
    shot = facts(
        [
            ("npm ERR! code EACCES", 18),
            ("Error: EACCES: permission denied, mkdir", 18),
            ("PermissionError: [Errno 13] Permission denied: 'out.txt'", 18),
        ]
    )
    clues = image_clues(shot)
    assert [c.kind for c in clues] == ["error", "error"]
    assert clues[0].text == "PermissionError: [Errno 13] Permission denied: out.txt"


def test_sign_place_name_biggest_first_boilerplate_skipped() -> None:
    sign = facts(
        [("Welcome to", 40), ("ZERMATT", 96), ("Matterhorn Village 1620 m", 40)],
        labels=[("street sign", 0.7)],
    )
    assert [c.text for c in image_clues(sign)] == ["Zermatt", "Matterhorn Village 1620 m"]
    assert image_queries(sign) == ["what is Zermatt", "Zermatt", "Matterhorn Village 1620 m"]
    assert image_queries(sign, "where is this place?") == [
        "where is Zermatt?",
        "Zermatt",
        "Matterhorn Village 1620 m",
    ]
    assert image_queries(sign, "How high is the Matterhorn") == [
        "How high is the Matterhorn Zermatt",
        "Zermatt",
        "Matterhorn Village 1620 m",
    ]


def test_photo_labels_steer_when_confident() -> None:
    coffee = facts(labels=[("espresso", 0.95), ("cup", 0.02)])
    assert image_queries(coffee) == ["what is espresso", "espresso"]
    assert image_queries(coffee, "how much caffeine is in it?") == [
        "how much caffeine is in espresso?",
        "espresso",
    ]
    unsure = facts(labels=[("football helmet", 0.16), ("bobsled", 0.11)])
    assert image_queries(unsure, "who is this?") == ["who is this?"]  # a weak label does not steer
    assert image_queries(unsure) == ["what is football helmet"]  # nothing else to go on
    assert image_queries(facts()) == []


def test_text_lines_need_confident_labels_and_prose_is_the_last_resort() -> None:
    menu = facts([("Soup of the day: leek and potato", 16)], labels=[("menu", 0.9), ("plate", 0.05)])
    assert image_queries(menu) == ["Soup of the day: leek and potato"]
    shop = facts([("open daily from nine to five", 16)], labels=[("bakery", 0.8)])
    assert image_queries(shop) == ["what is bakery", "bakery", "open daily from nine to five"]
    code = facts([("for i in range(10): print(i)", 16)])
    assert image_queries(code) == []  # code is neither an error, a name nor prose


def test_caption_and_several_images_dedupe_and_cap() -> None:
    photo = facts(
        labels=[("tabby", 0.5)],
        caption="A grey tabby cat sits on a windowsill. It looks outside.",
        source="cat.jpg",
    )
    shot = facts(TRACEBACK)
    queries = image_queries([photo, shot], "what is going on?", max_queries=3)
    assert queries == [
        "what is going on? ModuleNotFoundError: No module named requests",
        "ModuleNotFoundError: No module named requests",
        "A grey tabby cat sits on a windowsill",
    ]
    assert image_queries([photo, photo], max_queries=10) == ["A grey tabby cat sits on a windowsill", "tabby"]


def test_describe_and_as_dict_for_the_prompt_and_json() -> None:
    both = [facts(labels=[("espresso", 0.95), ("cup", 0.02)], source="coffee.png"), facts(TRACEBACK)]
    text = describe(both)
    assert text.splitlines()[0] == (
        "Image 1 (coffee.png, PNG 800x600): looks like espresso (95%); no text in the image."
    )
    assert "ModuleNotFoundError: No module named 'requests'" in text.splitlines()[1]
    payload = json.loads(json.dumps([f.as_dict() for f in both]))
    assert payload[0]["labels"] == [{"name": "espresso", "score": 0.95}, {"name": "cup", "score": 0.02}]
    assert payload[1]["text"].endswith("ModuleNotFoundError: No module named 'requests'")
    assert set(payload[0]) == {"source", "text", "labels", "caption", "metadata", "warnings"}
    assert payload[0]["metadata"]["width"] == 800


def test_ocr_repairs_rows_and_spacing() -> None:
    pieces = [
        OcrLine("requests", 0.9, (514, 67, 618, 84)),
        OcrLine("Traceback", 0.99, (11, 14, 130, 32)),
        OcrLine("ModuleNotFoundError:Nomodulenamed", 0.99, (10, 64, 488, 83)),
        OcrLine("(most recent call last):", 0.97, (147, 13, 457, 35)),
    ]
    rows = join_rows(pieces)
    assert [r.text for r in rows] == [
        "Traceback (most recent call last):",
        "ModuleNotFoundError:Nomodulenamed requests",
    ]
    assert repair_spacing(rows[1].text) == "ModuleNotFoundError: No module named requests"
    assert repair_spacing("Welcometo") == "Welcome to"
    assert repair_spacing("borrow of movedvalue") == "borrow of moved value"
    for kept in (
        "Zermatt",
        "Grindelwald",
        "Traceback",
        "Dropbox",
        "numpy",
        "https://example.com/a:b",
        "/usr/lib/nomodulenamed",
    ):
        assert repair_spacing(kept) == kept
