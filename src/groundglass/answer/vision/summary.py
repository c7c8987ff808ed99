"""What was recognised in images, in a few words: for the terminal's status line and for the first
line of an image question's answer ("In the image: ...")."""

from __future__ import annotations

from collections.abc import Sequence

from groundglass.answer.vision.facts import FactsRecord, VisualFacts
from groundglass.answer.vision.queries import image_clues

MAX_TEXT = 80  # characters of an image's text quoted


def _quote(text: str) -> str:
    text = " / ".join(line for line in text.splitlines() if line.strip())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def seen(facts: FactsRecord, label_min_score: float = 0.2, key_text: str | None = None) -> str:
    """One image's facts (their ``as_dict`` form) in a few words: likely labels, its text (``key_text``
    when given: the line that matters, e.g. an error message), the caption; or "nothing recognised"."""
    likely = [lb for lb in facts["labels"] if lb["score"] >= label_min_score]
    labels = ", ".join(f"{lb['name']} ({lb['score']:.0%})" for lb in likely[:3])
    text = _quote(key_text or facts["text"])
    bits = [
        f"looks like {labels}" if labels else "",
        f'reads "{text}"' if text else "",
        f"caption: {facts['caption']}" if facts["caption"] else "",
    ]
    return "; ".join(b for b in bits if b) or "nothing recognised"


def recognised(all_facts: Sequence[VisualFacts], label_min_score: float = 0.2) -> str:
    """The answer's first line for an image question: what was recognised in each image, quoting the
    text line that steered the search (an error message, a name) rather than the start of the text."""
    parts = []
    for f in all_facts:
        key = next((c.text for c in image_clues(f, label_min_score) if c.kind in ("error", "name")), None)
        parts.append(seen(f.as_dict(), label_min_score, key))
    if len(parts) == 1:
        return f"In the image: {parts[0]}."
    return " ".join(f"Image {n}: {p}." for n, p in enumerate(parts, start=1))
