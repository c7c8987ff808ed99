"""Settings of the answer engine: the language model, retrieval from the local index, images in
questions and the reasoning effort."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from groundglass.config.section import Section, renamed_keys


class LLMSettings(Section):
    # "default" (Qwen2.5-Coder-1.5B), "fast" (0.5B), "tiny" (SmolLM2-135M), a path to a .gguf file,
    # or "openai:MODEL@BASE_URL" for any OpenAI-compatible endpoint.
    model: str = "default"
    api_key: str | None = None  # for openai: specs; falls back to $GROUNDGLASS_LLM_API_KEY / $OPENAI_API_KEY
    context_length: int = 4096
    threads: int | None = None
    # Longest answer, in tokens. Unset: the reasoning effort's own cap (512 for minimal/low, 768 medium,
    # 1536 high); set: one cap for every level. A request's max_tokens wins over both.
    max_tokens: int | None = Field(None, ge=1)
    # 0: greedy decoding. Grounded answers should repeat their sources, not vary; with sampling (0.2) the
    # 1.5B model sometimes tacked the decline sentence onto a complete, cited answer.
    temperature: float = 0.0
    timeout_s: float = 120.0
    # Process the prompt's start (system message, conversation, question) while the search runs; the
    # sources are appended when ready. llama.cpp runtimes only; off is the sequential baseline.
    prefill_during_search: bool = True
    # Greedy answers (temperature 0) take drafts from their own prompt: the tokens that followed the
    # answer's last few tokens in the sources, checked in one batch (llama.cpp runtimes only; the same
    # answer, sooner where it copies its sources). Off: one token a step.
    lookup_decoding: bool = True
    # Let llama.cpp repack the weights at load for its repacked CPU kernels. Unset: off for Q4_K models
    # (the default model) on CPUs with AVX2 or AVX-512, where llama.cpp's own kernels read the prompt as
    # fast (AVX2) or 1.4 times as fast (AVX-512) and the model loads in 0.3-0.4 s instead of 0.7-1.1;
    # llama.cpp's default (on) elsewhere.
    repack_weights: bool | None = None


class RetrievalSettings(Section):
    index: str = "default"
    top_k: int = 5  # sources given to the model (the docs eval lost no answer at 5, one at 4)
    candidates: int = 40  # per retriever, before fusion
    context_tokens: int = 1200  # token budget for the sources in the prompt
    chunk_tokens: int = 180
    chunk_overlap: int = 30
    max_per_source: int = 2  # diversity: at most this many chunks of one document
    min_support: float = 0.35  # per-sentence attribution below this is flagged unsupported
    # the engine drops sources less similar to the question than this (MiniLM cosine) and declines
    # without calling the model when none is left
    min_relevance: float = 0.3
    # ...and those more than this below the best candidate's cosine (fewer distractors, shorter prefill)
    relevance_margin: float = 0.2


# --- images in questions -----------------------------------------------------------------------------


class VisionSettings(Section):
    """Images in questions: input limits, the offline extractors (OCR, ImageNet labels) and an optional
    OpenAI-compatible vision model for captions. Image URLs are fetched by the page reader
    (``[fetch]``: address checks, timeout), with ``max_image_bytes`` as the byte limit."""

    max_image_bytes: int = Field(50_000_000, ge=1024)  # per image, uploaded or downloaded (as Perplexity)
    # width x height of one frame; more is refused as a decompression bomb (default: Pillow's warning level;
    # Pillow itself refuses twice its Image.MAX_IMAGE_PIXELS, so raising this beyond that has no effect)
    max_pixels: int = Field(89_478_485, ge=1)
    max_images: int = Field(8, ge=1)  # per question
    ocr: bool = True  # read text with RapidOCR
    ocr_min_score: float = Field(0.5, ge=0, le=1)  # recognised lines below this confidence are dropped
    ocr_max_side: int = Field(960, ge=64)  # text detection runs at most at this size (longest side)
    labels: bool = True  # ImageNet labels with EfficientNet-Lite0
    max_labels: int = Field(5, ge=1, le=1000)  # labels kept per image (top_k counts sources elsewhere)
    label_min_score: float = Field(0.2, ge=0, le=1)  # labels below this never steer the search queries
    threads: int | None = Field(None, ge=1)  # intra-op threads for OCR; None: onnxruntime's default
    max_queries: int = Field(4, ge=1, le=20)  # search queries written from the images and the question
    # Captions from an OpenAI-compatible vision model (vLLM, Ollama, llama.cpp server...): the base URL
    # up to /v1, e.g. "http://localhost:11434/v1"; empty: no captions.
    caption_url: str = ""
    caption_model: str = ""
    caption_api_key: SecretStr | None = None  # falls back to $GROUNDGLASS_VISION_API_KEY
    caption_prompt: str = (
        "Describe this image in one or two sentences. "
        "If it shows text, quote the most important text exactly."
    )
    caption_max_tokens: int = Field(160, ge=1)
    caption_timeout_s: float = Field(60.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data: Any) -> Any:
        return renamed_keys(data, "vision", {"top_k": "max_labels"})

    def caption_key(self) -> str:
        if self.caption_api_key:
            return self.caption_api_key.get_secret_value()
        return os.environ.get("GROUNDGLASS_VISION_API_KEY", "")


# --- reasoning effort: presets per level, overrides per model name ---------------------------------

EffortName = Literal["minimal", "low", "medium", "high"]


class EffortOverride(Section):
    """Fields of one effort preset to change (see ``groundglass.answer.effort``); unset keeps the preset's."""

    max_sub_queries: int | None = Field(None, ge=1, le=16)
    max_rounds: int | None = Field(None, ge=1, le=10)
    sources_per_query: int | None = Field(None, ge=1, le=100)
    context_tokens: int | None = Field(None, ge=100)
    answer_max_tokens: int | None = Field(None, ge=1)
    think: bool | None = None
    related_questions: bool | None = None
    answer_style: Literal["brief", "detailed", "report"] | None = None


class ReasoningSettings(Section):
    """``reasoning_effort``: the level used when a request names none, and per-model changes to the
    built-in presets, keyed by model name or glob, e.g. ``[reasoning.models."sonar-pro".high]``
    ``max_sub_queries = 6`` or ``[reasoning.models."*".medium]`` for every model."""

    # minimal: one search for the question as asked (the fastest; what `groundglass ask` does unless
    # --reasoning-effort says otherwise)
    default_effort: EffortName = "minimal"
    models: dict[str, dict[EffortName, EffortOverride]] = Field(default_factory=dict)
