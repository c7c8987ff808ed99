"""Model specs -> LLM objects.

A spec is one of:

- ``default``, ``fast``, ``tiny``: an embedded model (see :mod:`groundglass.assets`), run in-process;
- a path to a ``.gguf`` file, run in-process through llama.cpp;
- ``openai:MODEL@BASE_URL``: any OpenAI-compatible endpoint, e.g.
  ``openai:qwen2.5@http://127.0.0.1:11434/v1`` (Ollama) or ``openai:gpt-4o-mini@https://api.openai.com/v1``;
  ``openai:MODEL`` alone means OpenAI itself.

Loaded llama.cpp models are kept per (file, context length, threads) for the life of the process, so
repeated questions reuse the weights and llama.cpp's cached prompt prefix; endpoint clients are kept
per endpoint, so their HTTP connections are reused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.llm.base import LLM
    from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM
    from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM
    from groundglass.config import Settings

EMBEDDED = ("default", "fast", "tiny")
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
VALID_FORMS = (
    "'default', 'fast' or 'tiny' (embedded models), a path to a .gguf file, or "
    "'openai:MODEL@BASE_URL' (e.g. openai:qwen2.5@http://127.0.0.1:11434/v1)"
)


@dataclass(frozen=True)
class ModelSpec:
    kind: Literal["embedded", "gguf", "openai"]
    name: str = ""  # embedded: "default" | "fast" | "tiny"
    path: Path | None = None  # gguf
    model: str = ""  # openai
    base_url: str = ""  # openai


def parse_model_spec(spec: str) -> ModelSpec:
    """Read a ``--model`` value; a :class:`GroundglassError` listing the valid forms if it is none."""
    text = spec.strip()
    if not text:
        raise GroundglassError("empty model spec", f"use {VALID_FORMS}", param="model")
    if text in EMBEDDED:
        return ModelSpec(kind="embedded", name=text)
    if text.startswith("openai:"):
        rest = text.removeprefix("openai:")
        model, base_url = rest, OPENAI_DEFAULT_BASE_URL
        for scheme in ("@http://", "@https://"):
            at = rest.find(scheme)
            if at >= 0:
                model, base_url = rest[:at], rest[at + 1 :]
                break
        else:
            if "@" in rest:
                raise GroundglassError(
                    f"model spec {spec!r}: the base URL must start with http:// or https://",
                    "write it like openai:qwen2.5@http://127.0.0.1:11434/v1",
                    param="model",
                )
        if not model:
            raise GroundglassError(
                f"model spec {spec!r} names no model",
                "write it like openai:qwen2.5@http://127.0.0.1:11434/v1",
                param="model",
            )
        return ModelSpec(kind="openai", model=model, base_url=base_url.rstrip("/"))
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf" or path.is_file():
        return ModelSpec(kind="gguf", path=path)
    raise GroundglassError(f"unknown model spec {spec!r}", f"use {VALID_FORMS}", param="model")


PROMPT_CACHE_DIR = "prompt-kv"  # in the cache folder: the first prompt prefix of each model (.prompt_cache)
_cache: dict[tuple[str, int, int | None, bool, bool | None], LlamaCppLLM] = {}
_remote_cache: dict[tuple[str, str, str | None, float, int], OpenAICompatibleLLM] = {}
_cache_lock = threading.Lock()


def load_llama(path: Path, settings: Settings, *, name: str | None = None) -> LlamaCppLLM:
    """One :class:`LlamaCppLLM` per (file, context length, threads, lookup decoding, repacking) in this
    process."""
    from groundglass.answer.llm.llama_cpp_runtime import LlamaCppLLM

    key = (
        str(path.resolve()),
        settings.llm.context_length,
        settings.llm.threads,
        settings.llm.lookup_decoding,
        settings.llm.repack_weights,
    )
    with _cache_lock:
        llm = _cache.get(key)
        if llm is None:
            llm = LlamaCppLLM(
                path,
                context_length=settings.llm.context_length,
                threads=settings.llm.threads,
                name=name,
                lookup=settings.llm.lookup_decoding,
                repack_weights=settings.llm.repack_weights,
                prompt_cache_dir=settings.cache_dir / PROMPT_CACHE_DIR,
            )
            _cache[key] = llm
        return llm


def load_remote(model: str, base_url: str, settings: Settings) -> OpenAICompatibleLLM:
    """One :class:`OpenAICompatibleLLM` (and so one HTTP connection pool) per endpoint and settings."""
    from groundglass.answer.llm.openai_runtime import OpenAICompatibleLLM, api_key_from

    key = (
        model,
        base_url,
        api_key_from(settings.llm.api_key),
        settings.llm.timeout_s,
        settings.llm.context_length,
    )
    with _cache_lock:
        llm = _remote_cache.get(key)
        if llm is None:
            llm = OpenAICompatibleLLM(
                model,
                base_url,
                api_key=settings.llm.api_key,
                timeout_s=settings.llm.timeout_s,
                context_length=settings.llm.context_length,
            )
            _remote_cache[key] = llm
        return llm


def clear_cache() -> None:
    """Forget loaded models and endpoint clients (llama.cpp memory is freed once nothing holds it)."""
    with _cache_lock:
        for llm in _cache.values():
            llm.close()
        for remote in _remote_cache.values():
            remote.close()
        _cache.clear()
        _remote_cache.clear()


def load_llm(spec: str | None, settings: Settings) -> LLM:
    """The LLM for ``spec`` (``settings.llm.model`` when None), ready to stream."""
    parsed = parse_model_spec(spec if spec is not None else settings.llm.model)
    if parsed.kind == "openai":
        return load_remote(parsed.model, parsed.base_url, settings)
    if parsed.kind == "embedded":
        from groundglass.assets import MODELS, ensure_model

        path = ensure_model(parsed.name, settings)
        return load_llama(path, settings, name=Path(MODELS[parsed.name].filename).stem)
    assert parsed.path is not None
    return load_llama(parsed.path, settings)
