"""The photos of a fine-tuning upload, checked before anything is stored.

An upload is a zip of images or one or more image files. Every photo is checked for its type (by its
name and by what Pillow finds inside), its size in bytes, and its decoded pixels: the header's size
is compared with ``server.max_image_pixels`` before any pixel is decoded (Pillow's own
decompression-bomb guard stays on as well), then the whole image is decoded, so a truncated or
damaged file is refused here rather than in the middle of a training run.

Archives are read entry by entry, never extracted: an entry whose name is absolute or climbs out
(``../``), a link, too many entries, an entry that inflates past its limit (the declared size is
not trusted: reading stops at the limit) or a suspicious compression ratio is refused. macOS
resource forks (``__MACOSX/``, ``._name``) and folders are skipped. The photos that pass are stored
as a fresh zip with plain names (``photo-00.png`` ...).

Every refusal is a :class:`~groundglass.errors.GroundglassError` with status 400 that names the file.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from groundglass.errors import GroundglassError

IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_PHOTO_BYTES = 30_000_000
MAX_ZIP_ENTRIES = 1000
MAX_RATIO = 200  # deflate rarely beats 10:1 on photos; 1000:1 is a bomb's signature
MIN_SIDE = 8


@dataclass(frozen=True)
class Photo:
    name: str  # as uploaded (for messages)
    content: bytes
    format: str
    width: int
    height: int


def _refuse(message: str, fix: str, code: str = "invalid_file") -> GroundglassError:
    return GroundglassError(message, fix, status=400, code=code, param="file")


def check_photo(name: str, content: bytes, *, max_pixels: int) -> Photo:
    """One photo, decoded to the last pixel; a clear 400 when it is not a usable image."""
    from PIL import Image, UnidentifiedImageError

    if not name.lower().endswith(IMAGE_SUFFIXES):
        raise _refuse(
            f"{name} is not an image file (expected {', '.join(IMAGE_SUFFIXES)})",
            "upload only photos, or a zip of photos",
            code="not_an_image",
        )
    if len(content) > MAX_PHOTO_BYTES:
        raise _refuse(
            f"{name} is {len(content):,} bytes; a photo may have at most {MAX_PHOTO_BYTES:,}",
            "downscale it (a few megapixels is plenty)",
            code="image_too_large",
        )
    if not content:
        raise _refuse(f"{name} is empty", "upload the photo again", code="not_an_image")
    try:
        with Image.open(io.BytesIO(content)) as image:
            fmt, (width, height) = image.format or "", image.size
            if fmt not in IMAGE_FORMATS:
                raise _refuse(
                    f"{name} is a {fmt or 'unknown'} image; accepted: {', '.join(IMAGE_FORMATS)}",
                    "convert it to PNG or JPEG",
                    code="not_an_image",
                )
            if width * height > max_pixels:
                raise _refuse(
                    f"{name} is {width}x{height} pixels ({width * height:,}); at most "
                    f"{max_pixels:,} are accepted",
                    "downscale it",
                    code="image_too_large",
                )
            if min(width, height) < MIN_SIDE:
                raise _refuse(
                    f"{name} is only {width}x{height} pixels", "upload a real photo", code="image_too_small"
                )
            image.load()  # every pixel: a truncated or damaged file fails here
    except GroundglassError:
        raise
    except Image.DecompressionBombError as exc:
        raise _refuse(
            f"{name} is a decompression bomb: {exc}", "upload a normal photo", code="image_too_large"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _refuse(
            f"{name} is not a readable image ({exc})", "upload a PNG or JPEG photo", code="not_an_image"
        ) from None
    return Photo(name, content, fmt, width, height)


def _skipped(info: zipfile.ZipInfo) -> bool:
    parts = PurePosixPath(info.filename).parts
    return info.is_dir() or (
        bool(parts)
        and (parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] in (".DS_Store", "Thumbs.db"))
    )


def _check_entry_name(info: zipfile.ZipInfo, archive: str) -> None:
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or path.is_absolute() or ":" in path.parts[0] or ".." in path.parts:
        raise _refuse(
            f"{archive}: the entry {name!r} points outside the archive (path traversal)",
            "zip the photos from inside their folder",
            code="unsafe_archive",
        )
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise _refuse(
            f"{archive}: the entry {name!r} is a symbolic link",
            "zip the photos themselves",
            code="unsafe_archive",
        )


def photos_of_zip(name: str, content: bytes, *, max_pixels: int, max_images: int) -> list[Photo]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(
            f"{name} is not a readable zip archive ({exc})", "upload a .zip of photos", code="invalid_archive"
        ) from None
    photos: list[Photo] = []
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise _refuse(
                f"{name} holds {len(entries)} entries; at most {MAX_ZIP_ENTRIES} are read",
                f"zip at most {max_images} photos",
                code="unsafe_archive",
            )
        budget = MAX_PHOTO_BYTES * max_images  # all the photos the file may hold, inflated
        for info in entries:
            _check_entry_name(info, name)
            if _skipped(info):
                continue
            label = f"{name}: {info.filename}"
            if info.flag_bits & 0x1:
                raise _refuse(
                    f"{label} is encrypted", "zip the photos without a password", code="invalid_archive"
                )
            if info.file_size > MAX_PHOTO_BYTES or (
                info.compress_size and info.file_size / info.compress_size > MAX_RATIO
            ):
                raise _refuse(
                    f"{label} inflates to {info.file_size:,} bytes from {info.compress_size:,} (a zip bomb?)",
                    "zip the photos themselves",
                    code="unsafe_archive",
                )
            if len(photos) >= max_images:
                raise _refuse(
                    f"{name} holds more than {max_images} photos",
                    f"upload at most {max_images} (3-5 are enough for DreamBooth)",
                    code="too_many_images",
                )
            try:
                with archive.open(info) as handle:  # the declared size may lie: stop at the limit
                    data = handle.read(min(MAX_PHOTO_BYTES, budget) + 1)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
                raise _refuse(
                    f"{label} cannot be read ({exc})", "zip the photos again", code="invalid_archive"
                ) from None
            if len(data) > MAX_PHOTO_BYTES or len(data) > budget:
                raise _refuse(
                    f"{label} inflates past {min(MAX_PHOTO_BYTES, budget):,} bytes (a zip bomb?)",
                    "zip the photos themselves",
                    code="unsafe_archive",
                )
            budget -= len(data)
            photos.append(check_photo(label, data, max_pixels=max_pixels))
    return photos


def check_upload(files: list[tuple[str, bytes]], *, max_pixels: int, max_images: int) -> list[Photo]:
    """The photos of an upload (zips and images, in order); refuses an upload with none."""
    photos: list[Photo] = []
    for name, content in files:
        if name.lower().endswith(".zip") or content[:4] == b"PK\x03\x04":
            photos += photos_of_zip(name, content, max_pixels=max_pixels, max_images=max_images)
        else:
            photos.append(check_photo(name, content, max_pixels=max_pixels))
        if len(photos) > max_images:
            raise _refuse(
                f"the upload holds more than {max_images} photos",
                f"upload at most {max_images} (3-5 are enough for DreamBooth)",
                code="too_many_images",
            )
    if not photos:
        raise _refuse(
            "the upload holds no photos",
            "upload 3-5 photos of the subject (or a zip of them)",
            code="no_images",
        )
    return photos


def bundle(photos: list[Photo]) -> bytes:
    """The checked photos as one zip with plain names (what a job unpacks into its instance folder)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, photo in enumerate(photos):
            archive.writestr(f"photo-{i:02d}{IMAGE_FORMATS[photo.format]}", photo.content)
    return out.getvalue()


def unpack(bundled: bytes, folder: PurePosixPath | str) -> int:
    """Write a :func:`bundle` zip's photos into ``folder`` (names are our own); return how many."""
    from pathlib import Path

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(io.BytesIO(bundled)) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename).name
            if not name.startswith("photo-") or not name.endswith(tuple(IMAGE_FORMATS.values())):
                continue
            (target / name).write_bytes(archive.read(info))
            count += 1
    return count
