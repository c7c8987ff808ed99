"""Images in, validated images out: decode PNG, JPEG, WEBP and GIF from a file, an upload, a ``data:``
URI or an http(s) URL, within limits, or fail with an :class:`ImageError` (HTTP 400) naming the problem.

Checks, in order, so that nothing expensive happens before the cheap checks pass:

1. size: the file's size, the base64 length of a ``data:`` URI (before decoding it) or the download
   (the page reader stops at ``vision.max_image_bytes``) against ``vision.max_image_bytes``;
2. format, from the first bytes (magic numbers), not from a name or a declared type: PNG, JPEG, WEBP
   and GIF are read; anything else (BMP, TIFF, SVG, HTML, random bytes) is named and refused;
3. dimensions, from the header only, against ``vision.max_pixels`` (a decompression bomb: a small
   file that would unpack to gigabytes). Pillow's own guard (``Image.MAX_IMAGE_PIXELS``) raises
   ``DecompressionBombError`` for the worst cases already while opening; it becomes the same error;
4. a full decode of the first frame: truncated or corrupt data fails here.

Image URLs go through :meth:`groundglass.answer.reader.PageReader.fetch_binary`: the same SSRF
guard, timeout, redirect handling and politeness as web pages, and a content-type check (only
``image/*`` types are downloaded; a page served as ``text/html`` is refused before its body is read).

File paths are for the CLI only: :meth:`ImageInput.from_api` accepts http(s) URLs and ``data:`` URIs,
so an API client cannot make the server read its own files.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote_to_bytes

from PIL import Image, ImageOps

from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.reader import PageReader
    from groundglass.config import Settings

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
SUPPORTED = "PNG, JPEG, WEBP or GIF"
# image/* types the reader downloads; "image/jpg" and "image/pjpeg" are seen in the wild
URL_MEDIA_TYPES = frozenset({*FORMATS.values(), "image/jpg", "image/pjpeg", "image/x-png"})
_FIX_FORMAT = f"convert the image to {SUPPORTED}"

# Formats we name when refusing them (Pillow could read some; we do not, to keep the decoders exposed to
# untrusted bytes few).
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"%PDF-", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"qoif", "QOI"),
)


class ImageError(GroundglassError):
    """An image that cannot be used: too large, not an image, an unsupported format, corrupt..."""

    status = 400
    code = "invalid_image"


@dataclass(frozen=True)
class ImageInput:
    """One image as given with a question, not yet loaded.

    ``kind`` says where the bytes come from: ``url`` (http/https), ``data`` (a ``data:`` URI),
    ``path`` (a local file: the CLI only) or ``bytes`` (an upload already in memory).
    """

    kind: Literal["url", "data", "path", "bytes"]
    value: str  # the URL, the data: URI, the path, or a name for the upload
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_api(cls, url: str) -> ImageInput:
        """An ``image_url`` content part's URL: http(s) or ``data:``; anything else is refused."""
        text = url.strip()
        head = text[:16].lower()
        if head.startswith("data:"):
            return cls("data", text)
        if head.startswith(("http://", "https://")):
            return cls("url", text)
        shown = text[:60] + ("..." if len(text) > 60 else "")
        raise ImageError(
            f"image_url must be an http(s) URL or a data: URI, got {shown!r}",
            "send the image as data:image/png;base64,... or give a public http(s) URL",
            param="image_url",
        )

    @classmethod
    def from_path(cls, path: str | Path) -> ImageInput:
        return cls("path", str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "upload") -> ImageInput:
        return cls("bytes", name, data)

    @classmethod
    def from_cli(cls, value: str) -> ImageInput:
        """``--image VALUE``: a URL or ``data:`` URI when it looks like one (other schemes are refused),
        else a file path."""
        if value[:16].lower().startswith("data:") or re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
            return cls.from_api(value)
        return cls.from_path(value)

    @property
    def label(self) -> str:
        """A short name for messages and for the facts' ``source``."""
        if self.kind == "data":
            return self.value[: self.value.find(",")][:60] if "," in self.value else "data: URI"
        return self.value if len(self.value) <= 200 else self.value[:197] + "..."


@dataclass
class LoadedImage:
    """A decoded, validated image: the first frame as RGB (EXIF orientation applied), plus what the
    metadata extractor needs from the original file."""

    source: str  # ImageInput.label
    data: bytes  # the file's bytes as given
    format: str  # PNG | JPEG | WEBP | GIF
    width: int  # as stored (before EXIF rotation)
    height: int
    animated: bool
    exif: Image.Exif
    rgb: Image.Image = field(repr=False)

    @property
    def mime(self) -> str:
        return FORMATS[self.format]


# ------------------------------------------------------------------------------------------- decoding


def sniff_format(data: bytes) -> str | None:
    """PNG/JPEG/WEBP/GIF from the first bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _describe_other(data: bytes) -> str:
    """What an unsupported file looks like, for the error message."""
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return f"a {name} file"
    head = data[:512].lstrip().lower()
    if b"<svg" in head or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "an SVG image (vector graphics)"
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF file"
    if not data:
        return "empty"
    head = data[:2048]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            return "not an image file"
    return "text"


def _rgb(image: Image.Image) -> Image.Image:
    """RGB for the models: EXIF rotation applied, transparency flattened onto white (a screenshot with
    a transparent background would otherwise turn black under black text)."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _bomb(source: str, width: int, height: int, limit: int) -> ImageError:
    return ImageError(
        f"image {source} is {width:,} x {height:,} pixels, over the limit of {limit:,} pixels "
        "(a decompression bomb or a very large image)",
        "scale the image down, or raise vision.max_pixels if you trust it",
    )


def check_size(source: str, size: int, limit: int) -> None:
    if size > limit:
        raise ImageError(
            f"image {source} is {size:,} bytes, over the {limit:,}-byte limit",
            "send a smaller image (or raise vision.max_image_bytes)",
        )


def decode_image(data: bytes, source: str, *, max_bytes: int, max_pixels: int) -> LoadedImage:
    """Validate and decode ``data``; raise :class:`ImageError` with the reason."""
    check_size(source, len(data), max_bytes)
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(
            f"image {source} is {_describe_other(data)}, not a supported image",
            f"send a {SUPPORTED} image" if data else "send a non-empty image file",
        )
    try:
        # (between MAX_IMAGE_PIXELS and twice that Pillow only warns; our own limit below decides. The
        # warning is not silenced: warnings.catch_warnings is not thread-safe.)
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:  # over twice Pillow's MAX_IMAGE_PIXELS: refused on open
        m = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        raise ImageError(
            f"image {source} claims {claimed}, over the limit of {limit:,} pixels "
            "(a decompression bomb or a very large image)",
            "scale the image down",
        ) from exc
    except Exception as exc:  # Pillow raises many types on bad headers
        raise ImageError(
            f"image {source} is not a valid {fmt} file ({_reason(exc)})",
            "the file is corrupt: save or export it again",
        ) from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError(f"image {source} has no pixels ({width} x {height})", "send a real image")
    if width * height > max_pixels:
        raise _bomb(source, width, height, max_pixels)
    try:
        animated = bool(getattr(image, "is_animated", False))  # looks at the second frame only
        exif = image.getexif()
        image.load()
        rgb = _rgb(image)
    except Exception as exc:
        raise ImageError(
            f"image {source} is truncated or corrupt ({_reason(exc)})",
            "the file is incomplete or damaged: upload it again or export it anew",
        ) from exc
    return LoadedImage(
        source=source,
        data=data,
        format=fmt,
        width=width,
        height=height,
        animated=animated,
        exif=exif,
        rgb=rgb,
    )


def _reason(exc: BaseException) -> str:
    text = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>", "the data", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# -------------------------------------------------------------------------------------------- sources


def parse_data_uri(uri: str, max_bytes: int) -> bytes:
    """The bytes of a ``data:[<media type>][;base64],<data>`` URI (RFC 2397), size-checked before
    decoding. Only image media types (or none) are accepted."""
    comma = uri.find(",")
    if comma < 0:
        raise ImageError(
            "data: URI has no comma before its data", "use the form data:image/png;base64,<base64 bytes>"
        )
    params = [p.strip().lower() for p in uri[5:comma].split(";")]
    media, is_b64 = params[0], "base64" in params[1:]
    if is_b64:  # refused by its length before the payload is copied (str.count allocates nothing)
        spaces = sum(uri.count(c, comma + 1) for c in " \t\r\n")
        check_size("data: URI", (len(uri) - comma - 1 - spaces) * 3 // 4 - 2, max_bytes)
    payload = uri[comma + 1 :]
    if media and not media.startswith("image/") and media not in ("application/octet-stream",):
        raise ImageError(
            f"data: URI has media type {media}, not an image",
            "send the image as data:image/png;base64,... (or jpeg, webp, gif)",
        )
    if not is_b64:
        data = unquote_to_bytes(payload)
        check_size("data: URI", len(data), max_bytes)
        return data
    compact = "".join(payload.split())  # line breaks are allowed in base64 bodies
    padding = len(compact) - len(compact.rstrip("="))
    check_size("data: URI", len(compact) * 3 // 4 - padding, max_bytes)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(
            f"data: URI has invalid base64 ({_reason(exc)})",
            "encode the file with standard base64 (A-Z a-z 0-9 + /, '=' padding)",
        ) from exc


def _read_path(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise ImageError(f"image file {path} does not exist", "check the path") from exc
    except OSError as exc:
        raise ImageError(f"cannot read image file {path}: {exc.strerror}", "check the path") from exc
    if not path.is_file():
        raise ImageError(f"image path {path} is not a file", "give the path of an image file")
    check_size(str(path), size, max_bytes)
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise ImageError(f"cannot read image file {path}: {exc.strerror}", "check its permissions") from exc
    check_size(str(path), len(data), max_bytes)  # the file grew after stat
    return data


async def _download(url: str, reader: PageReader, max_bytes: int) -> bytes:
    from groundglass.answer.reader import ReadError

    try:
        page = await reader.fetch_binary(url, URL_MEDIA_TYPES, max_bytes)
    except ReadError as exc:
        if exc.kind == "content_type":
            raise ImageError(
                f"image URL {url} does not point to an image: {exc.reason}",
                f"give the URL of the image file itself ({SUPPORTED})",
            ) from exc
        if exc.kind == "too_large":
            raise ImageError(
                f"image at {url} is too large: {exc.reason}",
                "use a smaller image (or raise vision.max_image_bytes)",
            ) from exc
        fix = "check the URL"
        if exc.kind == "blocked":
            fix = "use a public address (fetch.allow_private lets private ones through)"
        raise ImageError(f"cannot fetch image {url}: {exc.reason}", fix) from exc
    return page.data


def _check_count(inputs: Sequence[ImageInput], limit: int) -> None:
    if len(inputs) > limit:
        raise ImageError(
            f"{len(inputs)} images given, the limit is {limit}",
            "send fewer images (or raise vision.max_images)",
        )


def _local_bytes(item: ImageInput, max_bytes: int) -> bytes:
    if item.kind == "data":
        return parse_data_uri(item.value, max_bytes)
    if item.kind == "path":
        return _read_path(Path(item.value).expanduser(), max_bytes)
    if item.kind == "bytes":
        return item.data or b""
    raise ValueError(f"not a local image: {item.kind}")


async def load_images_async(
    inputs: Sequence[ImageInput], settings: Settings, reader: PageReader | None = None
) -> list[LoadedImage]:
    """Load and validate every image (URLs fetched concurrently through ``reader``, or a page reader
    made from ``[fetch]``); the first bad one raises :class:`ImageError`."""
    vs = settings.vision
    _check_count(inputs, vs.max_images)
    own_reader = None
    if reader is None and any(i.kind == "url" for i in inputs):
        from groundglass.answer.reader import PageReader

        reader = own_reader = PageReader(settings.fetch)

    async def raw(item: ImageInput) -> bytes:
        if item.kind == "url":
            assert reader is not None
            return await _download(item.value, reader, vs.max_image_bytes)
        return _local_bytes(item, vs.max_image_bytes)

    try:
        blobs = await asyncio.gather(*(raw(i) for i in inputs))
    finally:
        if own_reader is not None:
            await own_reader.aclose()
    return [
        await asyncio.to_thread(
            decode_image, blob, item.label, max_bytes=vs.max_image_bytes, max_pixels=vs.max_pixels
        )
        for item, blob in zip(inputs, blobs, strict=True)
    ]


def load_images(inputs: Sequence[ImageInput], settings: Settings) -> list[LoadedImage]:
    """The blocking twin of :func:`load_images_async`, for code outside an event loop (the engine runs
    in a worker thread); it starts an event loop only when a URL must be fetched."""
    if any(i.kind == "url" for i in inputs):
        return asyncio.run(load_images_async(inputs, settings))
    vs = settings.vision
    _check_count(inputs, vs.max_images)
    return [
        decode_image(
            _local_bytes(i, vs.max_image_bytes),
            i.label,
            max_bytes=vs.max_image_bytes,
            max_pixels=vs.max_pixels,
        )
        for i in inputs
    ]
