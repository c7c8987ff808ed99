"""Visual facts: what the offline extractors (and the optional caption model) found in one image.

:func:`image_facts` runs them on a loaded image; :func:`describe` writes the facts as a short text for
the answer prompt; :meth:`VisualFacts.as_dict` is the structured form for JSON and the API.
A failing caption backend does not fail the question: the facts carry a warning instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from groundglass.answer.vision.images import LoadedImage
from groundglass.answer.vision.labels import Label
from groundglass.answer.vision.metadata import ImageMetadata, image_metadata
from groundglass.answer.vision.ocr import OcrLine
from groundglass.errors import ModelError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.config import VisionSettings

log = get_logger(__name__)


class LabelScore(TypedDict):
    name: str
    score: float


class FactsRecord(TypedDict):
    """:class:`VisualFacts` in their JSON form: the stream's ``ImagesRead`` event, the API's
    ``visual_facts``."""

    source: str
    text: str
    labels: list[LabelScore]
    caption: str | None
    metadata: dict[str, Any]
    warnings: list[str]


@dataclass
class VisualFacts:
    source: str  # where the image came from: a path, a URL, "data:image/png;base64"
    metadata: ImageMetadata
    lines: list[OcrLine] = field(default_factory=list)  # OCR, top to bottom
    labels: list[Label] = field(default_factory=list)  # ImageNet classes, best first
    caption: str | None = None  # from the vision model, when one is configured
    warnings: list[str] = field(default_factory=list)  # e.g. the caption model was unreachable
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage: ocr, labels, caption

    @property
    def text(self) -> str:
        """The text read in the image, one line per visual line."""
        return "\n".join(line.text for line in self.lines)

    def as_dict(self) -> FactsRecord:
        return {
            "source": self.source,
            "text": self.text,
            "labels": [{"name": lb.name, "score": lb.score} for lb in self.labels],
            "caption": self.caption,
            "metadata": self.metadata.as_dict(),
            "warnings": list(self.warnings),
        }


def image_facts(image: LoadedImage, settings: VisionSettings) -> VisualFacts:
    """Run OCR, the classifier and the caption model (each as configured) on one image."""
    facts = VisualFacts(source=image.source, metadata=image_metadata(image))
    if settings.ocr:
        from groundglass.answer.vision.ocr import read_text

        started = time.perf_counter()
        facts.lines = read_text(
            image.rgb,
            min_score=settings.ocr_min_score,
            max_side=settings.ocr_max_side,
            threads=settings.threads,
        )
        facts.timings["ocr"] = round(time.perf_counter() - started, 4)
    if settings.labels:
        from groundglass.answer.vision.labels import classify

        started = time.perf_counter()
        facts.labels = classify(image.rgb, settings.max_labels)
        facts.timings["labels"] = round(time.perf_counter() - started, 4)
    if settings.caption_url:
        from groundglass.answer.vision.caption import caption

        started = time.perf_counter()
        try:
            facts.caption = caption(image, settings)
        except ModelError as exc:
            log.warning("caption_failed", source=image.source, error=str(exc))
            facts.warnings.append(f"no caption: {exc.message}")
        facts.timings["caption"] = round(time.perf_counter() - started, 4)
    return facts


def describe(all_facts: list[VisualFacts], *, label_min_score: float = 0.2, max_chars: int = 1200) -> str:
    """The facts as plain text for the answer prompt, one paragraph per image, e.g.

    ``Image 1 (coffee.png, PNG 400x300): looks like espresso (95%). Text in the image: none.``
    """
    parts = []
    for n, f in enumerate(all_facts, 1):
        m = f.metadata
        head = f"Image {n} ({f.source}, {m.format} {m.width}x{m.height}"
        head += f", taken {m.taken_at}" if m.taken_at else ""
        head += f", camera {m.camera}" if m.camera else ""
        bits = [head + ")"]
        if f.caption:
            bits.append(f"description: {f.caption}")
        likely = [lb for lb in f.labels if lb.score >= label_min_score]
        if likely:
            bits.append("looks like " + ", ".join(f"{lb.name} ({lb.score:.0%})" for lb in likely))
        text = " / ".join(line.text for line in f.lines)
        bits.append(f'text in the image: "{text}"' if text else "no text in the image")
        para = bits[0] + ": " + "; ".join(bits[1:]) + "."
        parts.append(para if len(para) <= max_chars else para[: max_chars - 3] + "...")
    return "\n".join(parts)
