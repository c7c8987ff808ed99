"""DreamBooth: personalise a Stable Diffusion model from a few photos of a subject."""

from __future__ import annotations

import logging

# diffusers imports transformers' CLIPImageProcessor and SiglipImageProcessor, whose default backend
# needs torchvision; without it transformers falls back to their PIL versions (the ones meant here) and
# says "Install torchvision", which this project never does. Only that notice is dropped, on the one
# logger that writes it; every other warning goes through.
TORCHVISION_FALLBACK = "requires torchvision (not installed); falling back to"


class _NoTorchvisionAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return TORCHVISION_FALLBACK not in record.getMessage()


logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionAdvice())
