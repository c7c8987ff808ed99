"""Images in chat completions: the official openai client against a real `groundglass serve` on 127.0.0.1.

A rendered terminal screenshot (as a data: URI) and a rendered town sign (by URL, fetched by the
server's guarded reader) are read offline (OCR, ImageNet labels), steer the search of a small local
index to the right page, and come back as ``visual_facts``. Every bad image is a 4xx with an
OpenAI-style error naming the problem, never a 500.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from PIL import Image
from server_helpers import KB, Api, ledger_rows
from vision_screens import TERMINAL_ERROR, ZERMATT_SIGN, sign, terminal
from vision_servers import Route, serve_images


def oai(api: Api) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.base_url + "/v1", api_key=api.key, max_retries=0, timeout=180)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def check_facts(facts: list[dict[str, Any]], words: str) -> None:
    """One image's facts: the text read, labels with scores, metadata."""
    assert len(facts) == 1
    fact = facts[0]
    assert words in fact["text"], fact["text"]
    assert fact["labels"] and all(0 <= lb["score"] <= 1 and lb["name"] for lb in fact["labels"])
    assert fact["metadata"]["format"] == "PNG" and fact["metadata"]["width"] > 100
    assert fact["caption"] is None and fact["warnings"] == []  # no caption model is configured


def test_screenshot_question_answered_from_the_index(corpus_api: Api) -> None:
    shot = terminal(TERMINAL_ERROR)
    content = [{"type": "text", "text": "How do I fix this?"}, image_part(data_uri(shot.png()))]
    r = oai(corpus_api).chat.completions.create(
        model="sonar", max_tokens=24, temperature=0, messages=[{"role": "user", "content": content}]
    )
    extra = r.model_extra or {}
    check_facts(extra["visual_facts"], "No module named")
    assert extra["visual_facts"][0]["source"] == "data:image/png;base64"
    # the text read in the screenshot steered the search to the page with the fix
    assert extra["citations"][0] == KB + "python-modulenotfounderror"
    assert extra["search_results"][0]["url"] == extra["citations"][0]
    assert r.choices[0].message.content.strip()
    u = r.usage.model_dump()
    assert u["num_search_queries"] >= 1
    rows = ledger_rows(corpus_api.home, request_id=r.id)
    assert len(rows) == 1 and rows[0]["status"] == 200
    assert rows[0]["num_search_queries"] == u["num_search_queries"]


def test_image_by_url_without_a_question_streams_its_facts_first(corpus_api: Api) -> None:
    board = sign(ZERMATT_SIGN)
    with serve_images() as images:
        images.routes["/zermatt.png"] = Route(body=board.png())
        stream = oai(corpus_api).chat.completions.create(
            model="sonar",
            stream=True,
            max_tokens=24,
            temperature=0,
            messages=[{"role": "user", "content": [image_part(images.url("/zermatt.png"))]}],  # no question
        )
        chunks = list(stream)
    assert images.requests == ["/zermatt.png"]  # fetched once, by the server's reader (127.0.0.1 allowed)
    first, second, last = (c.model_extra or {} for c in (chunks[0], chunks[1], chunks[-1]))
    # the visual facts come first, alone; then the sources; the last chunk repeats both with usage
    assert chunks[0].choices[0].delta.role == "assistant"
    check_facts(first["visual_facts"], "ZERMATT")
    assert first["visual_facts"][0]["source"] == images.url("/zermatt.png")
    assert "citations" not in first
    assert second["citations"][0] == KB + "zermatt" and "visual_facts" not in second
    assert last["visual_facts"] == first["visual_facts"] and last["citations"] == second["citations"]
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip()
    # "what is Zermatt" and the lines read on the sign were each searched, and each is billed
    assert chunks[-1].usage is not None and chunks[-1].usage.model_dump()["num_search_queries"] >= 2


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def _saved(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "navy").save(buf, fmt)
    return buf.getvalue()


def png_header(width: int, height: int, padding: int = 0) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels in its header (a decompression bomb), plus
    ``padding`` bytes after its end."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return png + chunk(b"IEND", b"") + b"\0" * padding


def user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, *parts]}]


BadCase = Callable[[Any], tuple[list[dict[str, Any]], str, str]]  # site -> (messages, message part, param)

BAD_IMAGES: dict[str, BadCase] = {
    "bad base64": lambda site: (
        user(image_part("data:image/png;base64,iVBOR%%%not-base64%%%")),
        "invalid base64",
        "image_url",
    ),
    "text, not an image": lambda site: (
        user(image_part(data_uri(b"just a note, no pixels here"))),
        "is text, not a supported image",
        "image_url",
    ),
    "declared text/html": lambda site: (
        user(image_part(data_uri(b"<html></html>", "text/html"))),
        "media type text/html, not an image",
        "image_url",
    ),
    "empty data: URI": lambda site: (user(image_part("data:image/png;base64,")), "is empty", "image_url"),
    "unsupported BMP": lambda site: (
        user(image_part(data_uri(_saved("BMP"), "image/bmp"))),
        "a BMP file, not a supported image",
        "image_url",
    ),
    "unsupported TIFF": lambda site: (
        user(image_part(data_uri(_saved("TIFF"), "image/tiff"))),
        "a TIFF file",
        "image_url",
    ),
    "truncated PNG": lambda site: (
        user(image_part(data_uri(_png((256, 256))[:3000]))),
        "truncated or corrupt",
        "image_url",
    ),
    "decompression bomb": lambda site: (
        user(image_part(data_uri(png_header(30_000, 30_000)))),
        "decompression bomb",
        "image_url",
    ),
    "file: URL": lambda site: (
        user(image_part("file:///etc/passwd")),
        "must be an http(s) URL or a data: URI",
        "messages.0.content.1.image_url",
    ),
    "URL of a web page": lambda site: (
        user(image_part(site.base_url + "/lighthouses.html")),
        "does not point to an image",
        "image_url",
    ),
    "URL of a corrupt image": lambda site: (
        user(image_part(site.base_url + "/image.png")),
        "not a valid PNG file",
        "image_url",
    ),
    "URL that is a 404": lambda site: (
        user(image_part(site.base_url + "/status/404")),
        "cannot fetch image",
        "image_url",
    ),
    "private address": lambda site: (
        user(image_part(f"http://127.0.0.2:{site.port}/image.png")),
        "cannot fetch image",
        "image_url",
    ),
    "metadata address": lambda site: (
        user(image_part("http://169.254.169.254/latest/meta-data/x.png")),
        "cannot fetch image",
        "image_url",
    ),
    "too many images": lambda site: (
        user(*[image_part(data_uri(_png())) for _ in range(9)]),
        "9 images given, the limit is 8",
        "image_url",
    ),
    "image from the assistant": lambda site: (
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [image_part(data_uri(_png()))]},
            {"role": "user", "content": "and this?"},
        ],
        "images are read only in user messages",
        "messages.1.content",
    ),
    "image_url without url": lambda site: (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}],
        'an image_url part needs {"url"',
        "messages.0.content.0.image_url",
    ),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_images_get_a_400_naming_the_problem(corpus_api: Api, loopback_web: Any, case: str) -> None:
    site, _ = loopback_web
    messages, words, param = BAD_IMAGES[case](site)
    for stream in (False, True):
        r = httpx.post(
            corpus_api.base_url + "/v1/chat/completions",
            headers=corpus_api.headers(),
            timeout=60,
            json={"model": "sonar", "messages": messages, "max_tokens": 8, "stream": stream},
        )
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert words in err["message"] and err["type"] == "invalid_request_error", err
        assert err["param"] == param, err
        if case != "image_url without url":
            assert err["code"] == "invalid_image"
    if case == "private address":  # the reader's address guard refused it, and says how to allow it
        assert "fetch.allow_private" in err["message"]


def test_openai_client_raises_bad_request_for_a_bad_image(corpus_api: Api) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(corpus_api).chat.completions.create(
            model="sonar", max_tokens=8, messages=user(image_part(data_uri(png_header(40_000, 40_000))))
        )
    assert info.value.status_code == 400 and info.value.code == "invalid_image"
    assert "decompression bomb" in info.value.message
    assert 'status="500"' not in httpx.get(corpus_api.base_url + "/metrics").text


def test_default_limits_admit_a_50_mb_image_and_refuse_more(corpus_api: Api) -> None:
    """The default body limit lets a 50 MB image through as a data: URI (66.7 MB of JSON): it reaches
    the image checks (here: refused as a decompression bomb, which is cheap to check). An image over
    vision.max_image_bytes is a 400 naming the limit; a body over server.max_body_bytes a 413."""

    def post(image: bytes) -> httpx.Response:
        body = json.dumps({"model": "sonar", "max_tokens": 8, "messages": user(image_part(data_uri(image)))})
        return httpx.post(
            corpus_api.base_url + "/chat/completions",
            content=body.encode(),
            timeout=120,
            headers={**corpus_api.headers(), "content-type": "application/json"},
        )

    r = post(png_header(30_000, 30_000, padding=49_990_000))
    assert r.status_code == 400 and "decompression bomb" in r.json()["error"]["message"], r.text[:300]
    r = post(png_header(30_000, 30_000, padding=50_500_000))
    assert r.status_code == 400, r.text[:300]
    assert "over the 50,000,000-byte limit" in r.json()["error"]["message"]

    # a body over the limit is refused from its Content-Length, before it is sent
    conn = http.client.HTTPConnection("127.0.0.1", corpus_api.server.port, timeout=30)
    conn.putrequest("POST", "/v1/chat/completions")
    for name, value in {
        **corpus_api.headers(),
        "Content-Type": "application/json",
        "Content-Length": str(70_000_001),
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    err = json.loads(response.read())["error"]
    conn.close()
    assert response.status == 413 and err["code"] == "request_too_large"
    assert "70,000,000-byte limit" in err["message"] and "server.max_body_bytes" in err["message"]
