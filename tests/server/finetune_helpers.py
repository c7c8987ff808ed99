"""Helpers for the fine-tuning tests: uploads good and bad, and the toy world's job settings."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

# One intra-op thread: the toy models gain nothing from more on a shared 2-core machine (see
# tests/dreambooth/conftest.py); the servers these tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from groundglass.dreambooth.world.subject import CLASS_PROMPT, INSTANCE_PROMPT, instance_paths

# A short toy-world run: every step logged, a checkpoint and samples every 3 steps.
TOY_HYPERPARAMETERS: dict[str, Any] = {
    "preset": "unet",
    "instance_prompt": INSTANCE_PROMPT,
    "identifier": "sks",
    "class_prompt": CLASS_PROMPT,
    "train_steps": 6,
    "learning_rate": 5e-4,
    "num_class_images": 2,
    "resolution": 32,
    "batch_size": 2,
    "checkpoint_every": 3,
    "sample_every": 3,
    "sample_steps": 2,
    "guidance_scale": 4.0,
}


def star_photos() -> list[Path]:
    return instance_paths()


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def stars_zip() -> bytes:
    return zip_of({f"stars/{p.name}": p.read_bytes() for p in star_photos()})


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_claiming(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )
