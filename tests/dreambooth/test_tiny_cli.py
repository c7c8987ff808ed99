"""``groundglass dreambooth tiny`` as a user runs it: a pipeline folder, and no advice to install
torchvision (which this project never installs) among its messages."""

from __future__ import annotations

import logging
from pathlib import Path

from dreambooth_helpers import run_subprocess


def test_tiny_writes_a_pipeline_without_torchvision_advice(tmp_path: Path) -> None:
    out = tmp_path / "tiny-sd"
    result = run_subprocess(["dreambooth", "tiny", str(out)])
    assert result.returncode == 0, result.stderr
    assert (out / "model_index.json").is_file() and (out / "unet").is_dir()
    assert "torchvision" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_only_the_torchvision_notice_is_dropped() -> None:
    """Other warnings of the logger that writes the notice still reach its handlers."""
    import groundglass.dreambooth  # noqa: F401  (installs the filter)

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("transformers.utils.import_utils")
    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning(
            "`CLIPImageProcessor` requires torchvision (not installed); falling back to "
            "`CLIPImageProcessorPil` for backward compatibility. Install torchvision to use the default "
            "backend"
        )
        logger.warning("some other transformers warning")
    finally:
        logger.removeHandler(handler)
    assert seen == ["some other transformers warning"]
