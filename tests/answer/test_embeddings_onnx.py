"""MiniLM on ONNX Runtime: the same vectors as torch, the same retrieval, no torch on the answer path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from groundglass.answer import embeddings
from groundglass.answer.embed_onnx import OnnxEmbedder, _batches

SENTENCES = [
    "Who built the Eddystone lighthouse, and when?",
    "John Smeaton built the third Eddystone lighthouse between 1756 and 1759.",
    "str.partition(sep) splits the string at the first occurrence of sep and returns a 3-tuple.",
    "If the separator is not found, return a 3-tuple containing the string itself and two empty strings.",
    "os.makedirs raises FileExistsError if the directory exists and exist_ok is false.",
    "The default value of the timeout parameter is None, which means wait forever.",
    "| Limit | Value |\n| --- | --- |\n| maximum recursion depth | 1000 |",
    "Photosynthesis converts light energy into chemical energy.",
    "Marie Curie was the first woman to win a Nobel Prize.",
    "La tour Eiffel est une tour de fer puddlé de 330 mètres de hauteur située à Paris.",
    "Mount Everest is Earth's highest mountain above sea level, at 8,849 metres.",
    "x",
    "A long passage about chess openings. " * 40,  # longer than the 256 word pieces the model reads
]


@pytest.fixture(scope="module")
def onnx() -> OnnxEmbedder:
    embedder = embeddings.load_embedder("onnx")  # raises instead of falling back to torch
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.fixture(scope="module")
def torch_embedder() -> embeddings.TorchEmbedder:
    return embeddings.load_embedder("torch")


def test_onnx_vectors_match_torch(onnx: OnnxEmbedder, torch_embedder: embeddings.TorchEmbedder) -> None:
    a = onnx.encode(SENTENCES)
    b = torch_embedder.encode(SENTENCES)
    assert a.shape == b.shape == (len(SENTENCES), embeddings.DIM) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-3)
    cosines = np.sum(a * b, axis=1)
    assert cosines.min() >= 0.99, cosines
    # batching and order do not change a vector
    again = onnx.encode(list(reversed(SENTENCES)), batch_size=3)[::-1]
    assert np.allclose(a, again, atol=1e-4)


def test_a_long_passage_is_not_padded_with_short_sentences() -> None:
    # an answer's attribution encodes a cited passage with its sentences: in one batch every sentence was
    # padded to the passage's 256 word pieces (seven times the work)
    lengths = np.array([30, 256, 28, 31, 120, 26, 100])
    batches = list(_batches(lengths, 32))
    assert batches[0] == [1]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert lengths[b].max() <= 2 * lengths[b].min() and lengths[b[0]] == lengths[b].max()
    assert [len(b) for b in _batches(np.full(70, 12), 32)] == [32, 32, 6]


def test_the_process_embedder_is_onnx_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROUNDGLASS_EMBEDDER", raising=False)
    embedder = embeddings.get_embedder()
    assert embedder.backend in ("onnx-int8", "onnx-fp32")  # the torch fallback is not a pass
    cached = embeddings.CachedEmbedder(embedder.inner, max_items=4)
    first = cached.encode(SENTENCES[:3])
    assert (cached.hits, cached.misses) == (0, 3)
    second = cached.encode([SENTENCES[2], SENTENCES[0], SENTENCES[0]])
    assert (cached.hits, cached.misses) == (3, 3)  # nothing encoded again
    assert np.array_equal(second[0], first[2]) and np.array_equal(second[1], first[0])
    cached.encode(SENTENCES[3:6])  # over the bound: the least recently used go
    assert len(cached._cache) == 4
    cached.encode([SENTENCES[1]])
    assert cached.misses == 7


def test_unknown_backend_is_a_clear_error() -> None:
    from groundglass.errors import ModelError

    with pytest.raises(ModelError, match="unknown embedder backend"):
        embeddings.load_embedder("tensorflow")


def test_dense_retrieval_quality_does_not_drop(
    onnx: OnnxEmbedder, torch_embedder: embeddings.TorchEmbedder
) -> None:
    """FanOutQA dev sub-questions against the summaries of their evidence pages plus distractors:
    recall@5 of the evidence page with ONNX vectors is at least torch's (within one question)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.fanoutqa_data import subquestions

    from groundglass.answer.index.builtin import wikipedia_documents

    corpus = {d.title: d for d in wikipedia_documents()}
    items = subquestions(set(corpus))[::7][:40]  # spread over the dev set
    assert len(items) >= 30
    gold = {t for _, t in items}
    docs = [corpus[t] for t in sorted(gold)] + [d for t, d in corpus.items() if t not in gold][:120]
    texts = [f"{d.title}\n{d.text[:700]}" for d in docs]
    titles = [d.title for d in docs]
    recalls = {}
    for name, embedder in (("torch", torch_embedder), ("onnx", onnx)):
        matrix = embedder.encode(texts)
        queries = embedder.encode([q for q, _ in items])
        top = np.argsort(-(queries @ matrix.T), axis=1)[:, :5]
        recalls[name] = sum(
            gold in {titles[i] for i in row} for (_, gold), row in zip(items, top, strict=True)
        )
    assert recalls["onnx"] >= recalls["torch"] - 1, recalls


def test_answering_from_an_index_never_imports_torch(wiki_index, tmp_path: Path) -> None:
    """``groundglass ask`` on an index, in a fresh process: torch is not imported (python -X importtime)."""
    env = {
        **os.environ,
        "GROUNDGLASS_HOME": str(wiki_index.settings.home),
        "GROUNDGLASS_MODEL": "tiny",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("GROUNDGLASS_CONFIG", None)
    env.pop("GROUNDGLASS_EMBEDDER", None)
    cmd = [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "groundglass.cli",
        "ask",
        "How high is Mount Everest?",
        "--index",
        "wiki",
        "--max-tokens",
        "16",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Everest" in result.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "groundglass.answer.embed_onnx" in imported  # the check would be empty without it
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}
    assert "sentence_transformers" not in imported


def test_the_first_export_prints_nothing_meant_for_the_tools_developers(tmp_path: Path) -> None:
    """A user's first ``make demo`` showed torch's TracerWarnings and onnxruntime's advice to
    pre-process the graph, as if something had gone wrong."""
    code = (
        "import sys; from pathlib import Path; from groundglass.answer import embeddings; "
        "from groundglass.answer.embed_onnx import export; "
        "meta = export(embeddings.model_dir(), Path(sys.argv[1])); print(meta['variant'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "graph")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] in ("int8", "fp32")
    for noise in ("Warning", "pre-processing", "Traceback"):
        assert noise not in done.stderr, done.stderr[-2000:]
