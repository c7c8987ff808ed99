"""Weight repacking at load (:mod:`groundglass.answer.llm.repack`), on real GGUF files: the tiny model as
shipped (Q4_1) and the same model quantised to Q4_K_M here by llama.cpp itself."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from groundglass.answer.llm import repack
from groundglass.answer.llm.base import ChatMessage, Completion
from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM

QUESTION = [ChatMessage("user", "What is the capital of France?")]


@pytest.fixture(scope="module")
def q4_k_gguf(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model requantised to Q4_K_M (a second or two for 135M parameters)."""
    import llama_cpp

    out = tmp_path_factory.mktemp("q4k") / "tiny-q4_k_m.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.allow_requantize = True
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(str(tiny_gguf).encode(), str(out).encode(), ctypes.byref(params))
    assert rc == 0
    return out


def test_the_share_of_q4_k_weights_is_read_from_the_header(tiny_gguf: Path, q4_k_gguf: Path) -> None:
    assert repack.q4_k_share(tiny_gguf) == 0.0
    # SmolLM2's rows of 576 do not split into Q4_K's blocks of 256: only the 1536-wide FFN projections
    # (a few percent of the bytes) can be Q4_K, and llama.cpp falls back to other types for the rest
    share = repack.q4_k_share(q4_k_gguf)
    assert share is not None and 0.0 < share < 0.5


def test_mostly_q4_k_weights_are_not_repacked_on_x86_and_others_keep_llamas_default() -> None:
    assert repack.repack_by_default(0.68, avx2=True) is False  # Qwen2.5 1.5B Q4_K_M
    assert repack.repack_by_default(0.68, avx2=False) is True  # e.g. ARM: llama.cpp's default
    assert repack.repack_by_default(0.0, avx2=True) is True  # Q4_0: repacking reads it 1.5x as fast
    assert repack.repack_by_default(None, avx2=True) is True  # header unreadable


def test_the_setting_wins_and_the_default_follows_the_file(tiny_gguf: Path, q4_k_gguf: Path) -> None:
    assert repack.repack_weights(q4_k_gguf, True) is True
    assert repack.repack_weights(tiny_gguf, False) is False
    assert repack.repack_weights(tiny_gguf, None) is True
    assert repack.repack_weights(q4_k_gguf, None) is True  # a few percent Q4_K only


@pytest.mark.parametrize("setting", [False, True])
def test_the_choice_reaches_llama_cpp_and_the_model_answers(q4_k_gguf: Path, setting: bool) -> None:
    import llama_cpp.llama_cpp as api

    default = api.llama_model_default_params
    llm = LlamaCppLLM(q4_k_gguf, context_length=512, threads=1, repack_weights=setting)
    try:
        assert llm.repack_weights is setting
        assert bool(llm._owner.call(lambda: llm._llama.model_params.use_extra_bufts)) is setting
        assert api.llama_model_default_params is default  # put back after the load
        done = Completion()
        text = "".join(llm.stream(QUESTION, max_tokens=12, temperature=0.0, completion=done))
        assert text.strip()
        assert done.completion_tokens > 0
    finally:
        llm.close()
