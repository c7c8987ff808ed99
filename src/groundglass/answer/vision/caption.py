"""Optional captions from any OpenAI-compatible vision model (vLLM, Ollama, llama.cpp's server, a
hosted API): one ``POST {vision.caption_url}/chat/completions`` with the image as an ``image_url``
content part holding a ``data:`` URI, non-streaming.

Configured in ``[vision]``: ``caption_url`` (empty: off), ``caption_model``, ``caption_api_key`` (or
``$GROUNDGLASS_VISION_API_KEY``), ``caption_prompt``, ``caption_max_tokens``, ``caption_timeout_s``.
The endpoint is the operator's own choice (like ``llm.model``), so it is not subject to the page
reader's private-address guard: a model on localhost is the common case.

Images go as they were given when the server can be expected to read them (PNG/JPEG/WEBP up to
4 MB and 2048 px); others (GIF, huge photos) are re-encoded, the longest side cut to 1536 px.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import httpx

from groundglass.answer.vision.images import LoadedImage
from groundglass.errors import ModelError

if TYPE_CHECKING:
    from groundglass.config import VisionSettings

_PASS_THROUGH = {"PNG", "JPEG", "WEBP"}
_MAX_PASS_BYTES = 4_000_000
_MAX_PASS_SIDE = 2048
_REENCODE_SIDE = 1536


def image_data_uri(image: LoadedImage) -> str:
    """The image as a ``data:`` URI a vision model accepts."""
    if (
        image.format in _PASS_THROUGH
        and len(image.data) <= _MAX_PASS_BYTES
        and max(image.width, image.height) <= _MAX_PASS_SIDE
    ):
        mime, data = image.mime, image.data
    else:
        rgb = image.rgb.copy()
        rgb.thumbnail((_REENCODE_SIDE, _REENCODE_SIDE))
        buf = io.BytesIO()
        if image.format in ("PNG", "GIF"):  # screenshots, diagrams: keep edges sharp
            rgb.save(buf, "PNG", optimize=True)
            mime = "image/png"
        else:
            rgb.save(buf, "JPEG", quality=90)
            mime = "image/jpeg"
        data = buf.getvalue()
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def caption_request(image: LoadedImage, settings: VisionSettings) -> dict[str, Any]:
    """The chat-completions body for one image."""
    return {
        "model": settings.caption_model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": settings.caption_prompt},
                    {"type": "image_url", "image_url": {"url": image_data_uri(image)}},
                ],
            }
        ],
        "max_tokens": settings.caption_max_tokens,
        "temperature": 0.0,
        "stream": False,
    }


def _content(body: Any) -> str:
    """choices[0].message.content as text (a string, or a list of text parts)."""
    content = body["choices"][0]["message"]["content"]
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise TypeError("content is not text")
    return " ".join(content.split())


def caption(image: LoadedImage, settings: VisionSettings, client: httpx.Client | None = None) -> str:
    """A caption of ``image`` from the configured vision model; raises :class:`ModelError` when the
    backend is unreachable, slow, refuses, or answers something that is not a chat completion."""
    if not settings.caption_url:
        raise ModelError(
            "no caption backend is configured", "set vision.caption_url and vision.caption_model"
        )
    url = settings.caption_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {key}"} if (key := settings.caption_key()) else {}
    own = client is None
    client = client or httpx.Client(timeout=settings.caption_timeout_s, trust_env=False)
    try:
        response = client.post(
            url, json=caption_request(image, settings), headers=headers, timeout=settings.caption_timeout_s
        )
    except httpx.TimeoutException as exc:
        raise ModelError(
            f"caption model at {url} did not answer within {settings.caption_timeout_s:g} s",
            "check the server, or raise vision.caption_timeout_s",
        ) from exc
    except httpx.HTTPError as exc:
        raise ModelError(
            f"caption model at {url} is unreachable: {exc}",
            "start the vision model server or fix vision.caption_url",
        ) from exc
    finally:
        if own:
            client.close()
    if response.status_code != 200:
        detail = " ".join(response.text.split())[:200]
        raise ModelError(
            f"caption model at {url} answered HTTP {response.status_code}: {detail}",
            "check vision.caption_model and vision.caption_api_key",
        )
    try:
        text = _content(response.json())
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelError(
            f"caption model at {url} did not return a chat completion",
            "point vision.caption_url at an OpenAI-compatible /v1 endpoint",
        ) from exc
    if not text:
        raise ModelError(
            f"caption model at {url} returned an empty caption",
            "check that vision.caption_model is a vision model",
        )
    return text
