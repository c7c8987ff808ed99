"""Whether llama.cpp repacks a model's weights for its CPU kernels when it loads them.

llama.cpp's CPU backend can copy quantised weights at load time into interleaved layouts
("extra buffer types", ``use_extra_bufts``) that its repacked matrix kernels read faster. It does so by
default for the types it has such kernels for. Whether that is faster depends on the type and on the
CPU, measured on the 2-core development machine (AVX-512 with VNNI, the Makefile's avx512 build,
``bench/bench_llm.py``-style prompt of 700 tokens, 1.5B model):

==========  ===========================  ==========================
weights      prompt tok/s, repacked       prompt tok/s, not repacked
==========  ===========================  ==========================
Q4_K (M)     108-115 (load 0.70 s)        156-160 (load 0.29 s)
Q4_0         94-96                        60-61
Q5_K, Q6_K   same either way (no repacked kernels for them)
==========  ===========================  ==========================

Decoding speed is the same either way (12.1-12.4 tok/s). On an AVX2 CPU without AVX-512 (AMD EPYC,
the Makefile's avx2 build, 2 cores, 400-token prompt, three alternating loads each way) the Q4_K model
pre-fills at 53-61 tok/s and decodes at 19-21 tok/s either way, and repacking adds 0.6-0.7 s to every
load (1.0-1.1 s against 0.4 s), which ``groundglass ask`` pays once per answer. So the default
(``llm.repack_weights`` unset) turns repacking off for models whose weights are mostly Q4_K (Q4_K_S,
Q4_K_M: the embedded default model) on a build with AVX2 or AVX-512 kernels, and leaves llama.cpp's
default everywhere else (other CPUs, other types: Q4_0 reads 1.5x as fast repacked); the setting forces
it either way.

llama-cpp-python 0.3.x has no argument for ``use_extra_bufts``: ``Llama`` builds its model parameters
from ``llama_model_default_params()`` inside its constructor. :func:`model_params_with` swaps that one
function for the length of a constructor call (under a lock, so two loads cannot see each other's
choice), which is the only way to set the flag without re-implementing the constructor.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections.abc import Iterator
from pathlib import Path

from groundglass.log import get_logger

log = get_logger(__name__)

GGML_TYPE_Q4_K = 12
_params_lock = threading.Lock()


class _GgufInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


@functools.cache
def _gguf_api() -> ctypes.CDLL:
    """ggml's GGUF reader, through the library llama-cpp-python loaded (it links ggml-base)."""
    import llama_cpp

    lib: ctypes.CDLL = llama_cpp.llama_cpp._lib
    lib.gguf_init_from_file.restype = ctypes.c_void_p
    lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, _GgufInitParams]
    lib.gguf_free.restype = None
    lib.gguf_free.argtypes = [ctypes.c_void_p]
    lib.gguf_get_n_tensors.restype = ctypes.c_int64
    lib.gguf_get_n_tensors.argtypes = [ctypes.c_void_p]
    lib.gguf_get_tensor_type.restype = ctypes.c_int
    lib.gguf_get_tensor_type.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    lib.gguf_get_tensor_size.restype = ctypes.c_size_t
    lib.gguf_get_tensor_size.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    return lib


def q4_k_share(path: Path) -> float | None:
    """The share of ``path``'s weight bytes stored as Q4_K (its header only, read by ggml in a few ms);
    None when ggml cannot read the header."""
    lib = _gguf_api()
    ctx = lib.gguf_init_from_file(str(path).encode(), _GgufInitParams(True, None))
    if not ctx:
        return None
    try:
        sizes = [
            (lib.gguf_get_tensor_type(ctx, i), int(lib.gguf_get_tensor_size(ctx, i)))
            for i in range(int(lib.gguf_get_n_tensors(ctx)))
        ]
        total = sum(size for _, size in sizes)
        return sum(size for kind, size in sizes if kind == GGML_TYPE_Q4_K) / total if total else None
    finally:
        lib.gguf_free(ctx)


@functools.cache
def cpu_has_avx2() -> bool:
    """Whether this llama.cpp build's CPU backend runs AVX2 kernels (its system info says so; an
    AVX-512 build has them too)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return "AVX2 = 1" in info


def repack_weights(path: Path, setting: bool | None) -> bool:
    """Whether to let llama.cpp repack ``path``'s weights: ``setting`` when given, else
    :func:`repack_by_default`."""
    if setting is not None:
        return setting
    avx2 = cpu_has_avx2()
    return repack_by_default(q4_k_share(path) if avx2 else None, avx2=avx2)


def repack_by_default(q4_k: float | None, *, avx2: bool) -> bool:
    """Off for a model whose weights are mostly Q4_K (``q4_k``: their share of the bytes) on a build
    with AVX2 (or AVX-512) kernels (module docstring), on otherwise (llama.cpp's default)."""
    return not (avx2 and q4_k is not None and q4_k >= 0.5)


@contextlib.contextmanager
def model_params_with(*, repack: bool) -> Iterator[None]:
    """While inside, ``Llama(...)`` loads its model with ``use_extra_bufts = repack``."""
    import llama_cpp.llama_cpp as api

    with _params_lock:
        default = api.llama_model_default_params

        def params() -> api.llama_model_params:
            p = default()
            p.use_extra_bufts = repack
            return p

        api.llama_model_default_params = params
        try:
            yield
        finally:
            api.llama_model_default_params = default
