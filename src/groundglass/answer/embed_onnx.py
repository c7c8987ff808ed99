"""MiniLM on ONNX Runtime: exported once from the packaged weights, int8-quantised, run without torch.

    embedder = OnnxEmbedder.load(folder, cache_root)   # exports on first use (needs torch once)
    vectors = embedder.encode(["a sentence", ...])     # (n, 384) float32, rows L2-normalised

The export wraps the packaged BERT with the sentence-transformers head of all-MiniLM-L6-v2 (mean
pooling over the attention mask, then L2 normalisation), so the ONNX graph returns finished sentence
vectors. ``torch.onnx.export`` writes the float32 graph; ``onnxruntime.quantization.quantize_dynamic``
makes the int8 one. Before either is used, its vectors for a fixed probe set are compared with torch's
(the model the export was made from): the int8 graph is kept when every probe's cosine is at least
``MIN_COSINE``, else the float32 one, else the export fails. The vectors therefore stay compatible
with those of indexes built by torch MiniLM (same model name in the index's meta).

The files live under ``cache_root / <sha256 of the source weights>/`` (``model.onnx``,
``export.json``); a new package version gets a new folder. Writes go to a temporary folder that is
renamed into place, so two processes exporting at once both end up with a complete folder.

Text is tokenised with the ``tokenizers`` package (the model's own ``tokenizer.json``), 256 word
pieces at most like sentence-transformers, in batches of similar lengths (longest first; a new batch where
the length halves) so they pad little.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from groundglass.errors import ModelError
from groundglass.log import get_logger
from groundglass.threads import native_thread

log = get_logger(__name__)

DIM = 384
MAX_TOKENS = 256
MIN_COSINE = 0.99  # per probe sentence, against torch's vector
EXPORT_FILE = "export.json"
MODEL_FILE = "model.onnx"
OPSET = 17
# Small calls (a query, a few sentences) run on one thread (embeddings.ONE_THREAD_MAX_TEXTS says why).
# Small is counted in word pieces, not texts: 16 passages of ~200 word pieces took 2.5 s on one thread
# and 1.4 s on two; a query and a dozen sentences (~700) cost the same on either.
ONE_THREAD_MAX_TOKENS = 1024
BATCH = 32
# A batch pads every text to its longest, so a text less than half as long as that starts a new batch:
# an answer's attribution (one 256-piece passage and 13 sentences of ~30) padded 543 pieces to 3,584
# in one batch and took 2.1 s on one thread; in three batches 683 pieces, 0.3 s.
PAD_RATIO = 2

# Probe sentences for the export's self-check: short and long, prose, code, numbers, other languages.
PROBES = (
    "What is the capital of France?",
    "The Eddystone lighthouse was built by John Smeaton between 1756 and 1759.",
    "asyncio.gather(*aws, return_exceptions=False) runs awaitables concurrently.",
    "The default value of the timeout parameter is 30 seconds; set it to None to wait forever.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "| Option | Default | Meaning |\n| --- | --- | --- |\n| -O | off | remove assert statements |",
    "Der Rhein ist ein Fluss in Mitteleuropa.",
    "zip() stops when the shortest input iterable is exhausted.",
    "In 1822 Augustin-Jean Fresnel presented a lens made of concentric rings of prisms, which "
    "bent the light of a single lamp into a narrow beam and made lighthouses visible from far out "
    "at sea. Keepers polished the prisms every morning and trimmed the wicks before sunset. " * 3,
    "ok",
)


def source_fingerprint(folder: Path) -> str:
    """sha256 over the model folder's weight, config and tokenizer files (names and contents).

    Memoised per process; hashing ~90 MB takes a fraction of a second, once.
    """
    key = str(folder.resolve())
    with _lock:
        if key in _fingerprints:
            return _fingerprints[key]
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in {".safetensors", ".bin", ".json", ".txt"}:
            continue
        h.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    digest = h.hexdigest()
    with _lock:
        _fingerprints[key] = digest
    return digest


_lock = threading.Lock()
_fingerprints: dict[str, str] = {}


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no spin-waiting: on a 2-core machine shared with llama.cpp, spinning threads steal its cores
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


class OnnxEmbedder:
    """MiniLM sentence embeddings from an exported ONNX graph; thread-safe; never imports torch."""

    name = "all-MiniLM-L6-v2"
    dim = DIM

    def __init__(self, graph: Path, tokenizer_file: Path, variant: str, batch_size: int = BATCH) -> None:
        from tokenizers import Tokenizer

        self.graph = graph
        self.variant = variant  # "int8" or "fp32"
        self.backend = f"onnx-{variant}"
        self.batch_size = batch_size
        tok = Tokenizer.from_file(str(tokenizer_file))
        tok.enable_truncation(max_length=MAX_TOKENS)
        tok.no_padding()
        self._tok = tok
        self._threads = max(1, min(4, os.cpu_count() or 1))
        self._small = _session(graph, 1)
        self._inputs = {i.name for i in self._small.get_inputs()}
        self._bulk_session = self._small if self._threads == 1 else None
        self._bulk_lock = threading.Lock()
        if self._bulk_session is None:
            # made beside the first small calls (a question's reading order) rather than before them: a
            # session takes 0.2-0.3 s to make, and the first call that needs this one comes seconds later.
            # A native thread (waited for at exit): a process that ends while ONNX Runtime makes a session
            # aborts ("terminate called without an active exception").
            native_thread(self._bulk, "groundglass-embedder-bulk").start()

    def _bulk(self) -> Any:
        """The session for large calls, on all the threads (made once)."""
        with self._bulk_lock:
            if self._bulk_session is None:
                self._bulk_session = _session(self.graph, self._threads)
            return self._bulk_session

    @classmethod
    def load(cls, folder: Path, cache_root: Path) -> OnnxEmbedder:
        """The embedder for the model in ``folder``, exporting it into ``cache_root`` when needed."""
        target = cache_root / source_fingerprint(folder)
        meta = _read_meta(target)
        if meta is None:
            export(folder, target)
            meta = _read_meta(target)
            if meta is None:
                raise ModelError(f"the ONNX export in {target} is incomplete", f"delete {target} and retry")
        return cls(target / MODEL_FILE, folder / "tokenizer.json", str(meta["variant"]))

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """``(len(texts), 384)`` float32, rows L2-normalised."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        encs = self._tok.encode_batch(list(texts), add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        session = self._small if int(lengths.sum()) <= ONE_THREAD_MAX_TOKENS else self._bulk()
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for rows in _batches(lengths, batch_size or self.batch_size):
            width = max(1, int(lengths[rows[0]]))
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = int(lengths[i])
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            out[rows] = session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        return out


def _batches(lengths: np.ndarray, size: int) -> Iterator[list[int]]:
    """Indexes of ``lengths`` in batches of at most ``size``, longest first; a batch ends early before a
    text less than 1 / ``PAD_RATIO`` as long as its first (longest), so padding at most doubles it."""
    batch: list[int] = []
    for i in np.argsort(-lengths, kind="stable").tolist():
        if batch and (len(batch) >= size or lengths[i] * PAD_RATIO < lengths[batch[0]]):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _read_meta(target: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((target / EXPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (target / MODEL_FILE).is_file() or meta.get("variant") not in ("int8", "fp32"):
        return None
    return meta


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def export(folder: Path, target: Path) -> dict[str, Any]:
    """Export the model in ``folder`` to ``target/model.onnx`` (int8 when it passes the probe check,
    else float32) and write ``target/export.json``. Needs torch; raises :class:`ModelError` when no
    graph matches torch's vectors."""
    started = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    target.parent.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_TOKENS
    reference = model.encode(
        list(PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        fp32 = work / "model.fp32.onnx"
        int8 = work / "model.int8.onnx"
        with _quiet_tools():
            _export_fp32(model, fp32)
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        variant, path, checks = _checked_graph(folder, reference, [("int8", int8), ("fp32", fp32)])
        path.rename(work / MODEL_FILE)
        for extra in (fp32, int8):
            extra.unlink(missing_ok=True)
        meta = {
            "variant": variant,
            "min_probe_cosine": checks,
            "source": str(folder),
            "torch": torch.__version__,
            "opset": OPSET,
            "seconds": round(time.perf_counter() - started, 1),
        }
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
        (work / EXPORT_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        _publish(work, target)
        log.info("embedder_exported", target=str(target), **{k: v for k, v in meta.items() if k != "source"})
        return meta
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_tools() -> Iterator[None]:
    """Silence what the exporter and the quantizer print for their own developers (torch's tracer
    warnings about Python booleans, onnxruntime's advice to pre-process): a user's first ``make demo``
    showed them as if something had gone wrong. The graph is checked against torch's vectors after."""
    advice = _DropAdvice()
    root = logging.getLogger()
    root.addFilter(advice)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(advice)


def _export_fp32(model: Any, path: Path) -> None:
    """Write the float32 graph of ``model`` (a SentenceTransformer) with its pooling head to ``path``."""
    import torch

    bert = model[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        """BERT + mean pooling over the attention mask + L2 normalisation (all-MiniLM-L6-v2's head)."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = model.tokenizer(
        ["a sample sentence", "another one, longer than the first"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        torch.onnx.export(
            Pooled().eval(),
            (sample["input_ids"], sample["attention_mask"]),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


def _checked_graph(
    folder: Path, reference: np.ndarray, graphs: list[tuple[str, Path]]
) -> tuple[str, Path, dict[str, float]]:
    """The first of ``graphs`` whose probe vectors all reach ``MIN_COSINE`` against torch's
    (``reference``): its variant, its path and the lowest cosine of each graph tried."""
    checks: dict[str, float] = {}
    for variant, path in graphs:
        graph = OnnxEmbedder(path, folder / "tokenizer.json", variant)
        worst = float(_cosines(graph.encode(list(PROBES)), reference).min())
        checks[variant] = round(worst, 5)
        if worst >= MIN_COSINE:
            return variant, path, checks
    raise ModelError(
        f"the ONNX export of {folder} does not match torch's vectors (lowest probe cosine {checks})",
        "the torch embedder is used instead",
    )


def _publish(work: Path, target: Path) -> None:
    """Rename the finished export folder ``work`` to ``target`` (in one step, so readers never see half)."""
    if target.exists() and _read_meta(target) is None:
        shutil.rmtree(target, ignore_errors=True)  # left half-written by a crashed export
    try:
        work.rename(target)
    except OSError:  # another process finished first: its folder is as good as ours
        if _read_meta(target) is None:
            raise
