"""Checks of fine-tuning uploads: real photos pass; bombs, traversal, non-images and giants are refused."""

from __future__ import annotations

import io
import zipfile

import pytest
from finetune_helpers import png_claiming, star_photos, stars_zip, zip_of

from groundglass.errors import GroundglassError
from groundglass.server.finetune.photos import bundle, check_upload, unpack

LIMITS = {"max_pixels": 40_000_000, "max_images": 10}


def refused(files: list[tuple[str, bytes]], **limits: int) -> GroundglassError:
    with pytest.raises(GroundglassError) as caught:
        check_upload(files, **{**LIMITS, **limits})
    assert caught.value.status == 400
    return caught.value


def test_photos_and_zips_of_photos_pass_and_are_stored_under_plain_names(tmp_path) -> None:
    stars = star_photos()
    singles = check_upload([(p.name, p.read_bytes()) for p in stars], **LIMITS)
    zipped = check_upload([("stars.zip", stars_zip())], **LIMITS)
    assert [p.content for p in singles] == [p.content for p in zipped] == [p.read_bytes() for p in stars]
    assert {(p.format, p.width, p.height) for p in zipped} == {("PNG", 32, 32)}
    # macOS junk beside the photos is skipped, not refused
    with_junk = zip_of(
        {"__MACOSX/._a.png": b"junk", "._b.png": b"junk", "a/": b"", "a/star.png": stars[0].read_bytes()}
    )
    assert len(check_upload([("mac.zip", with_junk)], **LIMITS)) == 1
    assert unpack(bundle(zipped), tmp_path / "photos") == 4
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == [f"photo-0{i}.png" for i in range(4)]


def test_bad_uploads_are_refused_with_what_is_wrong() -> None:
    star = star_photos()[0].read_bytes()
    assert refused([("notes.txt", b"hello")]).code == "not_an_image"
    error = refused([("fake.png", b"this is not a png at all")])
    assert "fake.png is not a readable image" in error.message
    truncated = refused([("cut.png", star[: len(star) // 2])])
    assert "cut.png" in truncated.message and truncated.code == "not_an_image"
    assert refused([("empty.zip", zip_of({}))]).code == "no_images"
    assert refused([("broken.zip", b"PK\x03\x04 not really a zip")]).code == "invalid_archive"

    traversal = refused([("evil.zip", zip_of({"../../etc/cron.d/x.png": star}))])
    assert "path traversal" in traversal.message and "../../etc/cron.d/x.png" in traversal.message
    assert refused([("abs.zip", zip_of({"/tmp/x.png": star}))]).code == "unsafe_archive"

    bomb = refused([("bomb.zip", zip_of({"big.png": b"\0" * 40_000_000}))])
    assert "zip bomb" in bomb.message and "big.png" in bomb.message
    inside = refused([("mixed.zip", zip_of({"a.png": star, "readme.md": b"# hi"}))])
    assert "readme.md is not an image file" in inside.message

    huge = refused([("huge.png", png_claiming(7000, 7000))])
    assert "7000x7000" in huge.message and "40,000,000" in huge.message and huge.code == "image_too_large"
    pillow_bomb = refused([("bomb.png", png_claiming(100_000, 100_000))])
    assert "decompression bomb" in pillow_bomb.message
    assert refused([("tiny.png", png_claiming(4, 4))]).code in ("image_too_small", "not_an_image")
    assert refused([(f"s{i}.png", star) for i in range(3)], max_images=2).code == "too_many_images"


def test_a_zip_whose_header_lies_about_its_size_is_stopped_while_reading() -> None:
    data = bytearray(zip_of({"a.png": b"\0" * 5_000_000}, compression=zipfile.ZIP_DEFLATED))
    # shrink the declared sizes in both headers to 10 bytes: the reader must not trust them
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.infolist()[0]
    for offset in (data.find(b"PK\x03\x04") + 22, data.find(b"PK\x01\x02") + 24):
        data[offset : offset + 4] = (10).to_bytes(4, "little")
    assert info.file_size == 5_000_000
    error = refused([("liar.zip", bytes(data))])
    assert error.code == "invalid_archive" and "liar.zip: a.png cannot be read" in error.message
