"""Captions from an OpenAI-compatible vision model, against a loopback server speaking the
chat-completions wire format; a failing backend leaves a warning, not a failed question."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator

import pytest
from PIL import Image
from vision_servers import VisionModelServer, serve_vision_model

from groundglass.answer.vision import ImageInput, describe, extract_facts, image_queries, load_images
from groundglass.answer.vision.caption import image_data_uri
from groundglass.answer.vision.images import decode_image


@pytest.fixture
def vlm() -> Iterator[VisionModelServer]:
    with serve_vision_model() as server:
        yield server


def caption_settings(vision_settings, server: VisionModelServer, **kw):
    return vision_settings(
        vision__ocr=False,
        vision__labels=False,
        vision__caption_url=server.base_url,
        vision__caption_model="llava-test",
        vision__caption_api_key=server.api_key,
        **kw,
    )


def test_caption_from_a_vision_model(photos, vlm, vision_settings) -> None:
    settings = caption_settings(vision_settings, vlm, vision__caption_prompt="What is in the picture?")
    facts = extract_facts([ImageInput.from_bytes(photos["chelsea"], "chelsea.png")], settings)[0]
    assert facts.caption == "A PNG picture, 451 by 300 pixels, sent as image/png;base64."
    assert facts.warnings == [] and facts.timings["caption"] > 0

    request = vlm.requests[0]
    assert request["model"] == "llava-test" and request["max_tokens"] == 160 and request["stream"] is False
    text, image = request["messages"][0]["content"]
    assert text == {"type": "text", "text": "What is in the picture?"}
    assert image["type"] == "image_url"
    assert base64.b64decode(image["image_url"]["url"].split(",", 1)[1]) == photos["chelsea"]  # as given

    assert image_queries(facts) == ["A PNG picture, 451 by 300 pixels, sent as image/png;base64"]
    assert "description: A PNG picture, 451 by 300 pixels" in describe([facts])
    assert facts.as_dict()["caption"] == facts.caption


def test_api_key_from_the_environment(photos, vlm, vision_settings, monkeypatch) -> None:
    monkeypatch.setenv("GROUNDGLASS_VISION_API_KEY", vlm.api_key)
    settings = vision_settings(
        vision__ocr=False,
        vision__labels=False,
        vision__caption_url=vlm.base_url,
        vision__caption_model="llava-test",
    )
    assert extract_facts([ImageInput.from_bytes(photos["rocket"])], settings)[0].caption.startswith("A PNG")
    monkeypatch.setenv("GROUNDGLASS_VISION_API_KEY", "wrong")
    facts = extract_facts([ImageInput.from_bytes(photos["rocket"])], settings)[0]
    assert facts.caption is None and "HTTP 401" in facts.warnings[0]


def test_images_are_reencoded_only_when_needed(vision_settings) -> None:
    settings = vision_settings()
    frames = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(frames, "GIF")
    big = io.BytesIO()
    Image.new("RGB", (4000, 1000), "blue").save(big, "JPEG")
    gif, jpeg = load_images(
        [ImageInput.from_bytes(frames.getvalue()), ImageInput.from_bytes(big.getvalue())], settings
    )
    head, _, data = image_data_uri(gif).partition(",")
    assert head == "data:image/png;base64" and Image.open(io.BytesIO(base64.b64decode(data))).size == (64, 48)
    head, _, data = image_data_uri(jpeg).partition(",")
    assert head == "data:image/jpeg;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (1536, 384)
    small = decode_image(_png(100, 100), "small", max_bytes=10**6, max_pixels=10**6)
    assert image_data_uri(small).startswith("data:image/png;base64,iVBOR")


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "green").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("error", 'answered HTTP 500: {"error": {"message": "the model crashed"}}'),
        ("garbage", "did not return a chat completion"),
        ("slow", "did not answer within 0.5 s"),
    ],
)
def test_a_failing_caption_backend_leaves_a_warning(mode, expected, vlm, vision_settings) -> None:
    vlm.mode = mode
    settings = caption_settings(vision_settings, vlm, vision__caption_timeout_s=0.5)
    started = time.perf_counter()
    facts = extract_facts([ImageInput.from_bytes(_png(32, 32), "green.png")], settings)[0]
    assert time.perf_counter() - started < 3
    assert facts.caption is None
    assert len(facts.warnings) == 1 and facts.warnings[0].startswith("no caption: caption model at ")
    assert expected in facts.warnings[0]


def test_an_unreachable_caption_backend(vision_settings, unused_port) -> None:
    settings = vision_settings(
        vision__ocr=False, vision__labels=False, vision__caption_url=f"http://127.0.0.1:{unused_port}/v1"
    )
    facts = extract_facts([ImageInput.from_bytes(_png(8, 8))], settings)[0]
    assert facts.caption is None and "is unreachable" in facts.warnings[0]
