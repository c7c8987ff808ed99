"""Image input: every supported format decodes; every bad input gets a 400 ImageError naming the problem,
fast (no model is loaded here)."""

from __future__ import annotations

import base64
import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image
from vision_servers import Route

from groundglass.answer.vision import ImageError, ImageInput, load_images
from groundglass.answer.vision.metadata import image_metadata


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_bomb(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header claims width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def load_one(settings, item: ImageInput):
    return load_images([item], settings)[0]


def refused(settings, item: ImageInput) -> ImageError:
    started = time.perf_counter()
    with pytest.raises(ImageError) as info:
        load_images([item], settings)
    assert time.perf_counter() - started < 5, "a bad image must fail fast"
    err = info.value
    assert err.status == 400 and err.code == "invalid_image" and err.fix
    return err


# ------------------------------------------------------------------------------------- good images


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_supported_formats_decode_from_bytes_path_and_data_uri(
    fmt, photos, vision_settings, tmp_path
) -> None:
    settings = vision_settings()
    photo = Image.open(io.BytesIO(photos["chelsea"]))
    blob = encode(photo, fmt)
    path = tmp_path / f"cat.{fmt.lower()}"
    path.write_bytes(blob)
    for item in (
        ImageInput.from_bytes(blob, "cat"),
        ImageInput.from_path(path),
        ImageInput.from_api(data_uri(blob, f"image/{fmt.lower()}")),
    ):
        image = load_one(settings, item)
        assert (image.format, image.width, image.height) == (fmt, 451, 300)
        assert image.rgb.mode == "RGB" and image.rgb.size == (451, 300)
        assert image.mime == f"image/{fmt.lower()}"


def test_transparent_png_is_flattened_onto_white(vision_settings) -> None:
    rgba = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # fully transparent: a screenshot's background
    rgba.paste((0, 0, 0, 255), (0, 0, 10, 20))  # opaque black "text"
    image = load_one(vision_settings(), ImageInput.from_bytes(encode(rgba, "PNG")))
    assert image.rgb.getpixel((30, 10)) == (255, 255, 255)
    assert image.rgb.getpixel((5, 10)) == (0, 0, 0)


def test_animated_gif_uses_the_first_frame(vision_settings) -> None:
    frames = [Image.new("RGB", (30, 30), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = load_one(vision_settings(), ImageInput.from_bytes(buf.getvalue()))
    assert image.animated and image.format == "GIF"
    assert image.rgb.getpixel((15, 15))[0] > 200  # red: frame one


def test_exif_date_camera_and_orientation(photos, vision_settings) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 5D Mark IV"
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    exif.get_ifd(0x8769)[0x9003] = "2021:06:05 14:30:00"
    blob = encode(Image.open(io.BytesIO(photos["coffee"])), "JPEG", exif=exif, quality=85)
    image = load_one(vision_settings(), ImageInput.from_bytes(blob, "coffee.jpg"))
    assert (image.width, image.height) == (600, 400)
    assert image.rgb.size == (400, 600)  # upright for the models
    meta = image_metadata(image)
    assert meta.taken_at == "2021-06-05T14:30:00"
    assert meta.camera == "Canon EOS 5D Mark IV"
    assert (meta.format, meta.mime, meta.bytes) == ("JPEG", "image/jpeg", len(blob))
    plain = image_metadata(load_one(vision_settings(), ImageInput.from_bytes(photos["coffee"])))
    assert plain.taken_at is None and plain.camera is None and (plain.width, plain.height) == (600, 400)


# -------------------------------------------------------------------------------------- bad images


def test_truncated_and_corrupt_files(photos, vision_settings) -> None:
    settings = vision_settings()
    jpeg = encode(Image.open(io.BytesIO(photos["coffee"])), "JPEG", quality=90)
    err = refused(settings, ImageInput.from_bytes(jpeg[: len(jpeg) // 2], "half.jpg"))
    assert "half.jpg is truncated or corrupt" in err.message

    png = bytearray(photos["coffee"])
    png[len(png) // 2 : len(png) // 2 + 64] = bytes(64)  # zeros in the middle of the compressed data
    err = refused(settings, ImageInput.from_bytes(bytes(png), "broken.png"))
    assert "broken.png" in err.message and ("corrupt" in err.message or "not a valid PNG" in err.message)

    err = refused(settings, ImageInput.from_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "header.png"))
    assert "not a valid PNG file" in err.message


def test_random_bytes_and_unsupported_formats(photos, vision_settings) -> None:
    settings = vision_settings()
    noise = bytes((i * 7919 + 13) % 251 for i in range(5000))
    assert "not an image file" in refused(settings, ImageInput.from_bytes(noise, "noise.bin")).message
    photo = Image.open(io.BytesIO(photos["chelsea"]))
    for fmt, name in (("BMP", "a BMP file"), ("TIFF", "a TIFF file")):
        err = refused(settings, ImageInput.from_bytes(encode(photo, fmt), f"cat.{fmt.lower()}"))
        assert f"is {name}, not a supported image" in err.message
        assert "PNG, JPEG, WEBP or GIF" in err.fix
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    assert "an SVG image" in refused(settings, ImageInput.from_bytes(svg, "logo.svg")).message
    assert "is empty" in refused(settings, ImageInput.from_bytes(b"", "nothing")).message
    assert "is text" in refused(settings, ImageInput.from_bytes(b"just some words\n", "notes.txt")).message


def test_decompression_bomb(vision_settings) -> None:
    bomb = png_header_bomb(30000, 30000)
    assert len(bomb) < 200
    before = Image.MAX_IMAGE_PIXELS
    err = refused(vision_settings(), ImageInput.from_bytes(bomb, "bomb.png"))
    assert "bomb.png claims 900,000,000 pixels, over the limit of 89,478,485 pixels" in err.message
    assert "decompression bomb" in err.message
    assert before == Image.MAX_IMAGE_PIXELS  # Pillow's global guard is left as it was

    # below Pillow's own threshold, our configurable limit decides
    small_limit = vision_settings(vision__max_pixels=1_000_000)
    err = refused(small_limit, ImageInput.from_bytes(png_header_bomb(2000, 1000), "wide.png"))
    assert "2,000 x 1,000 pixels, over the limit of 1,000,000 pixels" in err.message
    assert "vision.max_pixels" in err.fix
    ok = Image.new("RGB", (1000, 1000), "white")
    assert load_one(small_limit, ImageInput.from_bytes(encode(ok, "PNG"))).width == 1000


def test_oversized_upload_path_and_data_uri(photos, vision_settings, tmp_path: Path) -> None:
    settings = vision_settings(vision__max_image_bytes=4096)
    big = photos["coffee"]
    assert len(big) > 4096
    path = tmp_path / "coffee.png"
    path.write_bytes(big)
    for item in (
        ImageInput.from_bytes(big, "coffee.png"),
        ImageInput.from_path(path),
        ImageInput.from_api(data_uri(big)),
    ):
        err = refused(settings, item)
        assert "over the 4,096-byte limit" in err.message and "vision.max_image_bytes" in err.fix
    # a huge data: URI is refused by its length, before any decoding: decoding it would allocate its 30 MB
    huge = ImageInput.from_api("data:image/png;base64," + "A" * 40_000_000)
    tracemalloc.start()
    try:
        err = refused(settings, huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "over the 4,096-byte limit" in err.message
    assert peak < 5_000_000, f"{peak:,} bytes allocated while refusing"


def test_bad_data_uris(vision_settings) -> None:
    settings = vision_settings()
    err = refused(settings, ImageInput.from_api("data:image/png;base64,iVBORw0K@@GgoAAAA!!"))
    assert "invalid base64" in err.message
    err = refused(settings, ImageInput.from_api("data:image/png;base64,iVBORw0KGgo"))  # bad padding
    assert "invalid base64" in err.message
    err = refused(settings, ImageInput.from_api("data:text/html;base64," + base64.b64encode(b"<p>").decode()))
    assert "media type text/html, not an image" in err.message
    assert "no comma" in refused(settings, ImageInput.from_api("data:image/png;base64")).message


def test_api_images_cannot_name_local_files(vision_settings) -> None:
    for value in ("/etc/passwd", "file:///etc/passwd", "ftp://example.com/a.png", "C:\\pics\\a.png"):
        with pytest.raises(ImageError) as info:
            ImageInput.from_api(value)
        assert info.value.status == 400 and "http(s) URL or a data: URI" in info.value.message
    assert ImageInput.from_cli("/tmp/x.png").kind == "path"
    assert ImageInput.from_cli("https://example.com/x.png").kind == "url"


def test_missing_file_and_too_many_images(vision_settings, tmp_path: Path) -> None:
    settings = vision_settings(vision__max_images=2)
    err = refused(settings, ImageInput.from_path(tmp_path / "nope.png"))
    assert "does not exist" in err.message
    err = refused(settings, ImageInput.from_path(tmp_path))
    assert "is not a file" in err.message
    with pytest.raises(ImageError, match="3 images given, the limit is 2"):
        load_images([ImageInput.from_bytes(b"x")] * 3, settings)


# ------------------------------------------------------------------------- image URLs (the reader)


def url_settings(vision_settings, **kw):
    return vision_settings(fetch__allow_private=True, fetch__timeout_s=1.5, fetch__per_host_delay_s=0, **kw)


def test_image_urls_through_the_guarded_reader(photos, image_server, vision_settings) -> None:
    settings = url_settings(vision_settings)
    image_server.routes.update(
        {
            "/cat.png": Route(body=photos["chelsea"]),
            "/cat": Route(content_type="application/octet-stream", body=photos["chelsea"]),  # judged by bytes
            "/page.html": Route(
                content_type="text/html; charset=utf-8", body=b"<html><body>hi</body></html>"
            ),
            "/page-untyped": Route(content_type="application/octet-stream", body=b"<!doctype html><p>hi</p>"),
            "/gone.png": Route(status=404),
        }
    )
    image = load_one(settings, ImageInput.from_api(image_server.url("/cat.png")))
    assert (image.format, image.width, image.source) == ("PNG", 451, image_server.url("/cat.png"))
    assert load_one(settings, ImageInput.from_api(image_server.url("/cat"))).format == "PNG"

    err = refused(settings, ImageInput.from_api(image_server.url("/page.html")))
    assert "does not point to an image: content type text/html" in err.message
    err = refused(settings, ImageInput.from_api(image_server.url("/page-untyped")))
    assert "is an HTML page, not a supported image" in err.message
    assert "HTTP 404" in refused(settings, ImageInput.from_api(image_server.url("/gone.png"))).message


def test_image_url_limits_and_guard(photos, image_server, vision_settings) -> None:
    image_server.routes.update(
        {
            "/big.png": Route(body=photos["coffee"]),
            "/liar.png": Route(body=photos["coffee"], content_length=100),  # claims less than it sends
            "/slow.png": Route(body=photos["coffee"], stall_s=30),
        }
    )
    image_server.routes["/unsized.png"] = Route(body=photos["coffee"], content_length=-1)
    small = url_settings(vision_settings, vision__max_image_bytes=4096)
    err = refused(small, ImageInput.from_api(image_server.url("/big.png")))  # by its Content-Length
    assert "too large" in err.message and "4,096-byte limit" in err.message
    err = refused(small, ImageInput.from_api(image_server.url("/unsized.png")))  # counted while streaming
    assert "too large: more than 4,096 bytes" in err.message

    settings = url_settings(vision_settings)
    started = time.perf_counter()
    err = refused(settings, ImageInput.from_api(image_server.url("/slow.png")))
    assert time.perf_counter() - started < 4 and "cannot fetch image" in err.message
    assert "within 1.5 s" in err.message or "timed out" in err.message

    err = refused(settings, ImageInput.from_api(image_server.url("/liar.png")))  # body cut at its length
    assert "truncated or corrupt" in err.message

    seen = len(image_server.requests)
    guarded = vision_settings()  # default: private and loopback addresses refused
    err = refused(guarded, ImageInput.from_api(image_server.url("/big.png")))
    assert "private, loopback" in err.message and "allow_private" in err.fix
    assert len(image_server.requests) == seen  # refused before connecting
