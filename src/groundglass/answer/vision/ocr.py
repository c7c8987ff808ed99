"""Text in images with RapidOCR (PP-OCRv4 detection + recognition, ONNX, shipped in the
``rapidocr-onnxruntime`` wheel), loaded once per process on first use.

Settings differ from RapidOCR's defaults in one place: text detection runs with the image's longest
side at most ``vision.ocr_max_side`` (RapidOCR scales the *shortest* side up to 736 by default,
which makes a wide screenshot several times larger, slower, and loses the spaces between words).
Recognition still works on crops of the full-resolution image.

Two repairs after recognition (PP-OCRv4 was trained mostly on Chinese and sometimes drops the space
between English words, e.g. ``Nomodulenamed``):

- :func:`join_rows`: pieces of one visual line, which the detector often returns as separate boxes,
  are joined left to right;
- :func:`repair_spacing`: a run of letters that is not an English word is split into words with
  ``wordninja`` (English Wikipedia unigram frequencies) when the split is convincing: every piece
  among the 30,000 most common words when there are three or more pieces or one is a function word
  ("to", "no", "the"...); both among the 5,000 most common for two content words in lower case
  (a capitalised "Dropbox" stays whole).
  CamelCase identifiers (``ModuleNotFoundError``) and rare words (place names) are left alone.

Lines with fewer than two letters or digits in a row are dropped as noise.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from groundglass.answer.index.query import STOPWORDS
from groundglass.errors import ModelError

_engines: dict[tuple[int, int, float], Any] = {}
_lock = threading.Lock()
_splitter: Any = None
_LETTER_RUN = re.compile(r"[A-Za-z]{6,}")
_CAMEL = re.compile(r"[a-z][A-Z]")
_GLUED_PUNCT = re.compile(r"(?<=[A-Za-z])([:;,])(?=[A-Za-z])")
_URL_OR_PATH = re.compile(r"[/\\@=]")
_TWO_ALNUM = re.compile(r"[^\W_]{2}")
COMMON_RANK = 30_000  # a piece must be among the most frequent English words to be trusted
VERY_COMMON_RANK = 5_000  # ... and both pieces of a two-word split without a function word


@dataclass
class OcrLine:
    text: str
    score: float  # recognition confidence, 0..1
    box: tuple[int, int, int, int]  # left, top, right, bottom in the (EXIF-rotated) image


def ocr_engine(max_side: int = 960, threads: int | None = None, min_score: float = 0.5) -> Any:
    """The shared RapidOCR instance for these settings (made on first call, ~0.5 s). Settings are fixed
    at construction: passing them per call would make RapidOCR rewrite shared state on every call."""
    key = (max_side, threads or -1, min_score)
    with _lock:
        if key not in _engines:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise ModelError(
                    "OCR needs the rapidocr-onnxruntime package",
                    "pip install --no-deps rapidocr-onnxruntime==1.4.4 onnxruntime "
                    "opencv-python-headless pyclipper shapely six",
                ) from exc
            _engines[key] = RapidOCR(
                det_limit_type="max",
                det_limit_side_len=max_side,
                intra_op_num_threads=key[1],
                text_score=min_score,
            )
        return _engines[key]


def read_text(
    image: Image.Image, *, min_score: float = 0.5, max_side: int = 960, threads: int | None = None
) -> list[OcrLine]:
    """The lines of text in ``image`` (RGB), top to bottom, left to right."""
    engine = ocr_engine(max_side, threads, min_score)
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # RapidOCR wants OpenCV's BGR
    result, _ = engine(bgr)
    lines = []
    for points, raw, score in result or []:
        text = " ".join(str(raw).split())
        if not _TWO_ALNUM.search(text) or float(score) < min_score:
            continue
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        lines.append(
            OcrLine(text, round(float(score), 4), (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))))
        )
    return [OcrLine(repair_spacing(line.text), line.score, line.box) for line in join_rows(lines)]


def _word_splitter() -> tuple[Any, dict[str, int]]:
    global _splitter
    if _splitter is None:
        import wordninja

        model = wordninja.DEFAULT_LANGUAGE_MODEL
        _splitter = (model, {w: i for i, w in enumerate(model._wordcost)})  # the list is in frequency order
    return _splitter


def _split_glued(token: str) -> str:
    if _CAMEL.search(token):
        return token
    model, rank = _word_splitter()
    if token.lower() in rank:
        return token
    pieces = model.split(token)
    if len(pieces) < 2 or "".join(pieces) != token:
        return token
    lowered = [p.lower() for p in pieces]
    if len(pieces) < 3 and not any(p in STOPWORDS for p in lowered):
        # two content words glued: only in lower case ("movedvalue"; not the brand "Dropbox") and when
        # both are very common (not "traceback")
        if not token.islower():
            return token
        limit = VERY_COMMON_RANK
    else:
        limit = COMMON_RANK
    if all(p in STOPWORDS or (len(p) >= 2 and rank.get(p, limit) < limit) for p in lowered):
        return " ".join(pieces)
    return token


def repair_spacing(text: str) -> str:
    """Put back spaces OCR dropped: ``ModuleNotFoundError:Nomodulenamed`` ->
    ``ModuleNotFoundError: No module named``."""

    def repair(token: str) -> str:
        if _URL_OR_PATH.search(token):  # URLs, paths, e-mail addresses, key=value: as read
            return token
        return _LETTER_RUN.sub(lambda m: _split_glued(m.group(0)), _GLUED_PUNCT.sub(r"\1 ", token))

    return " ".join(repair(t) for t in text.split(" "))


def join_rows(lines: list[OcrLine]) -> list[OcrLine]:
    """Pieces of one visual line (the detector often splits a line at wide gaps) joined left to right;
    two pieces share a row when their vertical centres are closer than half the smaller height.
    The row's score is the length-weighted mean of its pieces'."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        cy = (line.box[1] + line.box[3]) / 2
        h = line.box[3] - line.box[1]
        if rows:
            last = rows[-1]
            ry = sum((p.box[1] + p.box[3]) / 2 for p in last) / len(last)
            rh = min(p.box[3] - p.box[1] for p in last)
            if abs(cy - ry) < 0.5 * min(h, rh):
                last.append(line)
                continue
        rows.append([line])
    out = []
    for row in rows:
        row.sort(key=lambda ln: ln.box[0])
        chars = sum(len(p.text) for p in row)
        score = sum(p.score * len(p.text) for p in row) / chars
        box = (
            min(p.box[0] for p in row),
            min(p.box[1] for p in row),
            max(p.box[2] for p in row),
            max(p.box[3] for p in row),
        )
        out.append(OcrLine(" ".join(p.text for p in row), round(score, 4), box))
    return out
