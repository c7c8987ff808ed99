"""Fixtures for the vision tests: settings under a temporary home, real photos, rendered screenshots,
and a loopback HTTP server that serves images (and things that are not images)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from vision_screens import photo_png
from vision_servers import ImageServer, serve_images

from groundglass.config import Settings, load_settings


@pytest.fixture
def vision_settings(gg_home: Path) -> Callable[..., Settings]:
    """``make(**overrides)``: settings under the temporary home, e.g. ``make(vision__max_pixels=10)``."""

    def make(**overrides: Any) -> Settings:
        data: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            section, _, name = key.partition("__")
            data.setdefault(section, {})[name] = value
        return load_settings(**data)

    return make


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """scikit-image's sample photos as PNG bytes."""
    return {name: photo_png(name) for name in ("coffee", "chelsea", "rocket", "astronaut")}


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    """A real HTTP server on 127.0.0.1; tests put routes into ``server.routes``."""
    with serve_images() as server:
        yield server
