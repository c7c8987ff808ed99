"""Suite-wide settings: offline model loading and one llama.cpp thread.

WANDB_MODE is deliberately not set here: transformers prints "[INFO] Running in WANDB offline mode"
to stdout at import when it is, which would corrupt `--json` output. W&B tests pass offline=True.

Tests run servers, trainers and models side by side on two cores; llama.cpp's threads spin-wait
on each other, so one thread per model is several times faster than two under that load.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GROUNDGLASS_LLM_THREADS", "1")
# Every test has its own GROUNDGLASS_HOME; the MiniLM ONNX export (a function of the packaged weights,
# in a folder named by their hash) is shared by all of them and by their subprocesses, made once.
os.environ.setdefault(
    "GROUNDGLASS_EMBEDDER_DIR", os.path.join(tempfile.gettempdir(), "groundglass-tests", "minilm-onnx")
)
