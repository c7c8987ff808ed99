"""Basic image metadata: format, size, animation, and from EXIF the capture date and the camera.

Pillow's EXIF reader does the parsing. GPS coordinates are deliberately left out: they locate the
person who took the photo, and the answer needs only the date and the camera.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from PIL import ExifTags

from groundglass.answer.vision.images import LoadedImage

_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_MAKE, _MODEL, _DATETIME, _SOFTWARE = 0x010F, 0x0110, 0x0132, 0x0131
_DATETIME_ORIGINAL = 0x9003


@dataclass
class ImageMetadata:
    format: str  # PNG | JPEG | WEBP | GIF
    mime: str
    width: int  # as stored in the file
    height: int
    bytes: int
    animated: bool = False
    taken_at: str | None = None  # ISO 8601 local time, from EXIF DateTimeOriginal (else DateTime)
    camera: str | None = None  # EXIF Make + Model, e.g. "Canon EOS 5D Mark IV"
    software: str | None = None  # EXIF Software (screenshots and edits often say what made them)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _iso_date(value: Any) -> str | None:
    m = _EXIF_DATE.match(_text(value) or "")
    if not m or m.group(1) == "0000":
        return None
    y, mo, d, h, mi, s = m.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}"


def _camera(make: str | None, model: str | None) -> str | None:
    if make and model:
        # models often repeat the maker: "Canon" + "Canon EOS 5D" -> "Canon EOS 5D"
        return model if model.lower().startswith(make.lower().split()[0]) else f"{make} {model}"
    return make or model


def image_metadata(image: LoadedImage) -> ImageMetadata:
    exif = image.exif
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # a damaged EXIF block must not sink the image
        sub = {}
    return ImageMetadata(
        format=image.format,
        mime=image.mime,
        width=image.width,
        height=image.height,
        bytes=len(image.data),
        animated=image.animated,
        taken_at=_iso_date(sub.get(_DATETIME_ORIGINAL)) or _iso_date(exif.get(_DATETIME)),
        camera=_camera(_text(exif.get(_MAKE)), _text(exif.get(_MODEL))),
        software=_text(exif.get(_SOFTWARE)),
    )
