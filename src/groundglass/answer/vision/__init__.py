"""Images that drive the search: image in -> validated image -> visual facts -> search queries.

The seam for the engine, the CLI and the API::

    from groundglass.answer.vision import ImageInput, extract_facts, image_queries, describe

    images = [ImageInput.from_path("photo.jpg")]          # CLI: --image PATH (or URL / data: URI)
    images = [ImageInput.from_api(part["image_url"]["url"])]  # API: http(s) URL or data: URI only
    facts = extract_facts(images, settings)                # list[VisualFacts]; ImageError (400) on bad input
    queries = image_queries(facts, question)               # list[str]; question may be ""
    prompt_text = describe(facts)                          # what was recognised, for the answer prompt
    payload = [f.as_dict() for f in facts]                 # JSON: "visual_facts"

Modules, one job each: :mod:`.images` (decode and validate), :mod:`.ocr` (RapidOCR), :mod:`.labels`
(EfficientNet-Lite0, ImageNet classes), :mod:`.metadata` (EXIF date and camera, size),
:mod:`.caption` (optional OpenAI-compatible vision model), :mod:`.facts` (the facts of one image),
:mod:`.queries` (facts + question -> search queries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from groundglass.answer.vision.facts import VisualFacts, describe, image_facts
from groundglass.answer.vision.images import (
    ImageError,
    ImageInput,
    LoadedImage,
    decode_image,
    load_images,
    load_images_async,
)
from groundglass.answer.vision.queries import IMPLIED_QUESTION, image_queries
from groundglass.answer.vision.summary import recognised, seen

if TYPE_CHECKING:
    from groundglass.config import Settings


def extract_facts(images: Sequence[ImageInput | LoadedImage], settings: Settings) -> list[VisualFacts]:
    """Load and validate every image first (a bad one raises :class:`ImageError` before any model
    runs), then read each: OCR, labels, metadata, caption as ``settings.vision`` says. Blocking and
    CPU-bound: call it from a worker thread in async code (``asyncio.to_thread``). Images given as
    URLs are fetched here; in async code fetch them with :func:`load_images_async` and pass the
    :class:`LoadedImage` objects instead."""
    inputs = [i for i in images if isinstance(i, ImageInput)]
    fetched = iter(load_images(inputs, settings)) if inputs else iter(())
    loaded = [i if isinstance(i, LoadedImage) else next(fetched) for i in images]
    return [image_facts(image, settings.vision) for image in loaded]


__all__ = [
    "IMPLIED_QUESTION",
    "ImageError",
    "ImageInput",
    "LoadedImage",
    "VisualFacts",
    "decode_image",
    "describe",
    "extract_facts",
    "image_facts",
    "image_queries",
    "load_images",
    "load_images_async",
    "recognised",
    "seen",
]
