"""Settings: one typed object, read from a TOML file plus the environment, validated once.

Lookup order for the config file: ``--config PATH`` (CLI), ``$GROUNDGLASS_CONFIG``,
``$GROUNDGLASS_HOME/config.toml``. All state lives under ``home``
(``$GROUNDGLASS_HOME``, default: the XDG data folder ``~/.local/share/groundglass``).
"""

from __future__ import annotations

import os
import tomllib
import warnings
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from groundglass.errors import GroundglassError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def renamed_keys(data: Any, section: str, renames: dict[str, str]) -> Any:
    """``data`` (a section's raw keys) with old key names read as their new ones, for one more release,
    each with a FutureWarning naming the new key. The new name wins when both are given."""
    if not isinstance(data, dict) or not any(old in data for old in renames):
        return data
    data = dict(data)
    for old, new in renames.items():
        if old in data:
            warnings.warn(
                f"setting {section}.{old} is deprecated and goes away in the next release; "
                f"write {section}.{new}",
                FutureWarning,
                stacklevel=2,
            )
            value = data.pop(old)
            data.setdefault(new, value)
    return data


class LLMSettings(_Section):
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


class RetrievalSettings(_Section):
    index: str = "default"
    top_k: int = 6  # sources given to the model
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


class CrawlSettings(_Section):
    """``index add URL``: how far the crawler goes (how it fetches each page is ``[fetch]``)."""

    max_pages: int = 200
    max_depth: int = 3


class FetchSettings(_Section):
    """Every URL groundglass fetches: the pages the crawler adds to an index (``index add URL``), the
    pages a web search reads (the page reader), and the image URLs of a question."""

    user_agent: str = "groundglass/0.1 (+https://github.com/groundglass)"
    # Private, loopback, link-local and metadata addresses are refused (after DNS resolution and on
    # every redirect) unless this is on, or the address is inside allowed_networks (CIDRs).
    allow_private: bool = False
    allowed_networks: list[str] = Field(default_factory=list)
    timeout_s: float = Field(10.0, gt=0)  # one page a web search reads, or an image URL: connect to last byte
    max_bytes: int = Field(3_000_000, ge=1024)  # bytes read of such a page; HTML/text beyond it is cut off
    max_redirects: int = Field(5, ge=0, le=30)
    concurrency: int = Field(8, ge=1, le=256)  # pages a web search reads at once
    per_host_concurrency: int = Field(2, ge=1, le=256)  # of those, at most this many to one host
    per_host_delay_s: float = Field(0.25, ge=0)  # at least this long between request starts to one host
    # The crawler reads whole documents (PDFs, long manuals) off the answer's critical path, so it waits
    # longer and reads more per page than a web search does.
    crawl_timeout_s: float = 15.0
    crawl_max_bytes: int = 10_000_000


# The page reader's settings are the fetch settings (the name answer/reader.py still imports).
ReaderSettings = FetchSettings

# Where the fetch settings were before [fetch], read for one release: (table, old key) -> fetch key.
OLD_FETCH_KEYS: dict[tuple[str, str], str] = {
    ("crawl", "user_agent"): "user_agent",
    ("crawl", "allow_private"): "allow_private",
    ("crawl", "allowed_networks"): "allowed_networks",
    ("crawl", "timeout_s"): "crawl_timeout_s",
    ("crawl", "max_bytes"): "crawl_max_bytes",
    **{
        ("search.reader", key): key
        for key in (
            "user_agent",
            "allow_private",
            "allowed_networks",
            "timeout_s",
            "max_bytes",
            "max_redirects",
            "concurrency",
            "per_host_concurrency",
            "per_host_delay_s",
        )
    },
}


def moved_to_fetch(data: Any) -> Any:
    """``data`` (the whole config) with the old fetch keys of ``[crawl]`` and ``[search.reader]`` read as
    their ``[fetch]`` keys, for one more release, each with a FutureWarning naming the new key. A key
    written in ``[fetch]`` wins; two old keys that now are one key must agree."""
    if not isinstance(data, dict) or not isinstance(data.get("fetch", {}), dict):
        return data
    data = dict(data)
    fetch = dict(data.get("fetch", {}))
    found: dict[str, tuple[str, Any]] = {}  # fetch key -> (the old key that gave it, its value)
    for (table, old), new in OLD_FETCH_KEYS.items():
        section, _, sub = table.partition(".")
        outer = data.get(section)
        inner = outer.get(sub) if sub and isinstance(outer, dict) else outer
        if not isinstance(inner, dict) or old not in inner:
            continue
        inner = dict(inner)
        value = inner.pop(old)
        if sub:
            rest = {k: v for k, v in outer.items() if k != sub}  # type: ignore[union-attr]
            data[section] = {**rest, sub: inner} if inner else rest
        else:
            data[section] = inner
        warnings.warn(
            f"setting {table}.{old} is deprecated and goes away in the next release; write fetch.{new}",
            FutureWarning,
            stacklevel=2,
        )
        if new in found and found[new][1] != value and new not in fetch:
            raise GroundglassError(
                f"the settings {found[new][0]} and {table}.{old} differ, and both are fetch.{new} now",
                f"write fetch.{new} once in the config (it applies to every fetch) and remove the old keys",
            )
        found.setdefault(new, (f"{table}.{old}", value))
    if found:
        data["fetch"] = {**{new: value for new, (_, value) in found.items()}, **fetch}
    return data


class ModelPreset(_Section):
    """What one API model name (``sonar``, ``sonar-pro``, ...) runs: a pipeline preset.

    ``llm`` is a model spec (see ``llm.model``); empty means ``llm.model``. ``max_tokens`` caps the
    answer; ``top_k``/``context_tokens`` apply at the default ``search_context_size`` and scale with
    ``server.context_scales`` when a request asks for another size.
    """

    llm: str = ""
    index: str = ""  # empty: retrieval.index
    top_k: int = Field(6, ge=1, le=100)
    context_tokens: int = Field(1200, ge=100)
    max_tokens: int = Field(512, ge=1)
    # the default reasoning effort of this model name (a request's reasoning_effort wins)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] = "minimal"
    search_context_size: Literal["low", "medium", "high"] = "low"
    # Where the sources come from: "index" (the local index: offline, the default) or "web" (the
    # providers of [search], with failover; their pages read as [fetch] says). A web preset's
    # web_search_options.search_context_size picks one of search.context_sizes.
    search: Literal["index", "web"] = "index"
    description: str = ""


class PricePlan(_Section):
    """A price table with the structure of Sonar's, in US dollars.

    Tokens are priced per million; each request pays a fee per thousand requests that depends on its
    ``search_context_size``. The optional citation/reasoning/search-query prices are Deep Research's.
    """

    input_per_million: float = Field(1.0, ge=0)
    output_per_million: float = Field(1.0, ge=0)
    citation_per_million: float = Field(0.0, ge=0)
    reasoning_per_million: float = Field(0.0, ge=0)
    search_queries_per_thousand: float = Field(0.0, ge=0)
    request_fee_per_thousand: dict[Literal["low", "medium", "high"], float] = Field(
        default_factory=lambda: {"low": 5.0, "medium": 8.0, "high": 12.0}
    )
    # DreamBooth (the plan of the job's or the image's base model): fine-tuning steps, the device time a
    # job held its device, and images drawn.
    training_steps_per_thousand: float = Field(0.0, ge=0)
    device_seconds_per_hour: float = Field(0.0, ge=0)
    images_per_thousand: float = Field(0.0, ge=0)


def _default_presets() -> dict[str, ModelPreset]:
    return {
        "sonar": ModelPreset(
            top_k=6,
            context_tokens=1200,
            max_tokens=512,
            reasoning_effort="minimal",
            description="Fast grounded answers: one search, few sources, short answers.",
        ),
        "sonar-pro": ModelPreset(
            top_k=10,
            context_tokens=2000,
            max_tokens=1024,
            reasoning_effort="low",
            description="More sources and longer answers; complex questions are split into sub-queries.",
        ),
        "sonar-reasoning-pro": ModelPreset(
            top_k=10,
            context_tokens=2000,
            max_tokens=2048,
            reasoning_effort="medium",
            description="Multi-step search with a visible <think> trace.",
        ),
        "sonar-deep-research": ModelPreset(
            top_k=16,
            context_tokens=3000,
            max_tokens=4096,
            reasoning_effort="high",
            search_context_size="high",
            description="The most sources and the longest answers.",
        ),
    }


def _default_prices() -> dict[str, PricePlan]:
    # Perplexity's published Sonar prices (USD) as defaults; set your own under [server.prices.NAME].
    return {
        "sonar": PricePlan(
            input_per_million=1,
            output_per_million=1,
            request_fee_per_thousand={"low": 5, "medium": 8, "high": 12},
        ),
        "sonar-pro": PricePlan(
            input_per_million=3,
            output_per_million=15,
            request_fee_per_thousand={"low": 6, "medium": 10, "high": 14},
        ),
        "sonar-reasoning-pro": PricePlan(
            input_per_million=2,
            output_per_million=8,
            request_fee_per_thousand={"low": 6, "medium": 10, "high": 14},
        ),
        "sonar-deep-research": PricePlan(
            input_per_million=2,
            output_per_million=8,
            citation_per_million=2,
            reasoning_per_million=3,
            search_queries_per_thousand=5,
            request_fee_per_thousand={"low": 0, "medium": 0, "high": 0},
        ),
    }


def _default_context_scales() -> dict[str, float]:
    return {"low": 1.0, "medium": 1.5, "high": 2.0}


def _default_search_modes() -> dict[str, list[str]]:
    # academic: open scholarly indexes, preprint servers and the large publishers; sec: EDGAR filings.
    return {
        "web": [],
        "academic": [
            "arxiv.org",
            "biorxiv.org",
            "medrxiv.org",
            "doi.org",
            "ncbi.nlm.nih.gov",
            "europepmc.org",
            "semanticscholar.org",
            "openalex.org",
            "scholar.archive.org",
            "jstor.org",
            "ssrn.com",
            "plos.org",
            "nature.com",
            "science.org",
            "springer.com",
            "sciencedirect.com",
            "wiley.com",
            "acm.org",
            "ieee.org",
            "aclanthology.org",
        ],
        "sec": ["sec.gov"],
    }


# One image of VisionSettings.max_image_bytes (50 MB) as base64 (4/3: 66.7 MB), plus room for the messages.
DEFAULT_MAX_BODY_BYTES = 70_000_000


class ServerSettings(_Section):
    """``groundglass serve``: address, keys, limits, ledger, jobs and the API's model names."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    open: bool = False  # serve without keys (local use); requests are recorded under key "open"
    # SQLAlchemy URL of the keys/usage/jobs database; empty: sqlite under $GROUNDGLASS_HOME/server.db.
    # PostgreSQL: "postgresql+psycopg://user:pass@host/db" (install the driver).
    database_url: str = ""
    # Rate-limit storage of the `limits` library: "memory://" (one process) or "redis://host:6379/0".
    rate_limit_storage: str = "memory://"
    default_rpm: int = Field(60, ge=1)  # for keys created without --rpm, and the open mode
    default_tpm: int = Field(200_000, ge=1)
    # JSON request bodies. The default admits one image of vision.max_image_bytes (50 MB, Perplexity's
    # limit) sent as a base64 data: URI (4/3 of its size: 66.7 MB) plus 3.3 MB for the rest of the
    # request; raise the two together. Larger bodies get a 413 before they are read.
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
    max_file_bytes: int = Field(100_000_000, ge=1024)  # uploads to /v1/files
    max_batch_lines: int = Field(50_000, ge=1)
    job_concurrency: int = Field(1, ge=1)  # engine runs at once for async and batch jobs, per process
    job_lease_s: float = Field(30.0, gt=0)  # a job line claimed by a process that died is retried after this
    # The time a batch has to finish (OpenAI's completion_window "24h"): past it, the batch ends "expired"
    # and its unfinished lines go to the error file with code batch_expired. Shorter values are for tests.
    batch_completion_window_s: float = Field(86_400.0, gt=0)
    engine_concurrency: int = Field(2, ge=1)  # engine runs at once for all requests, per process
    warm_up: bool = True  # load the default index, embedder and model in the background at start
    search_price_per_thousand: float = Field(5.0, ge=0)  # POST /search, per 1000 requests
    models: dict[str, ModelPreset] = Field(default_factory=_default_presets)
    prices: dict[str, PricePlan] = Field(default_factory=_default_prices)
    # Multiplier of a preset's top_k and context_tokens for each search_context_size, relative to the
    # preset's own size (search.context_sizes says what each size means for a web search).
    context_scales: dict[Literal["low", "medium", "high"], float] = Field(
        default_factory=_default_context_scales
    )
    # Perplexity's search_mode: the domains each mode narrows the sources to (index and web alike;
    # subdomains included). An empty list narrows nothing ("web" by default). A request's own
    # search_domain_filter allow-list must fall within the mode's list; its "-domain" entries apply too.
    search_modes: dict[Literal["web", "academic", "sec"], list[str]] = Field(
        default_factory=_default_search_modes
    )
    # DreamBooth through the API: base models a fine-tuning job or an image request may name (name ->
    # local diffusers folder or Hub id), besides the embedded "toy-world"; where jobs train; the limits
    # of a training file (photos per file, decoded pixels per photo).
    image_models: dict[str, str] = Field(default_factory=dict)
    finetune_accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    finetune_max_images: int = Field(50, ge=1)
    max_image_pixels: int = Field(40_000_000, ge=64)

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data: Any) -> Any:
        return renamed_keys(data, "server", {"context_sizes": "context_scales"})

    @field_validator("models", "prices", "context_scales", "search_modes", mode="before")
    @classmethod
    def _merge_with_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        """A config that names one preset or price adds to the built-in ones instead of replacing them."""
        if not isinstance(value, dict):
            return value
        defaults = {
            "models": _default_presets,
            "prices": _default_prices,
            "context_scales": _default_context_scales,
            "search_modes": _default_search_modes,
        }[info.field_name]()
        merged: dict[str, Any] = {
            k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in defaults.items()
        }
        merged.update(value)
        return merged

    @field_validator("search_modes")
    @classmethod
    def _mode_domains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """Domain names as the search filters compare them (``https://www.arxiv.org/`` -> ``arxiv.org``)."""
        from groundglass.domains import normalize_domain

        out: dict[str, list[str]] = {}
        for mode, domains in value.items():
            try:
                out[mode] = list(dict.fromkeys(normalize_domain(d) for d in domains))
            except GroundglassError as exc:
                raise ValueError(f"search_modes.{mode}: {exc.message}") from exc
        return out


# --- web search: providers, failover, cache, reader limits --------------------------------------------

ProviderName = Literal["searxng", "duckduckgo", "brave", "tavily", "local"]
ContextSizeName = Literal["low", "medium", "high"]


class SearxngSettings(_Section):
    """A SearXNG instance's JSON API (``search.formats`` must include ``json`` in its settings.yml)."""

    base_url: str = ""  # e.g. "http://localhost:8888"; empty: the provider is skipped as not configured
    categories: str = "general"
    engines: str = ""  # comma-separated SearXNG engine names; empty: the instance's defaults


class DuckDuckGoSettings(_Section):
    """DuckDuckGo's HTML endpoint through the ``ddgs`` package (no key)."""

    base_url: str = "https://html.duckduckgo.com/html/"
    region: str = "wt-wt"  # ddgs region code, e.g. "us-en", "de-de"; "wt-wt" = no region
    safesearch: Literal["on", "moderate", "off"] = "moderate"


class BraveSettings(_Section):
    """Brave Search API (``GET /res/v1/web/search``, header ``X-Subscription-Token``)."""

    base_url: str = "https://api.search.brave.com/res/v1"
    api_key: SecretStr | None = None  # falls back to $BRAVE_API_KEY
    country: str = ""  # e.g. "US"; empty: Brave's default

    def key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key else os.environ.get("BRAVE_API_KEY", "")


class TavilySettings(_Section):
    """Tavily (``POST /search`` with a JSON body, ``Authorization: Bearer KEY``)."""

    base_url: str = "https://api.tavily.com"
    api_key: SecretStr | None = None  # falls back to $TAVILY_API_KEY
    search_depth: Literal["basic", "advanced"] = "basic"

    def key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key else os.environ.get("TAVILY_API_KEY", "")


class LocalSearchSettings(_Section):
    """The local index as a search provider."""

    index: str = ""  # empty: retrieval.index


class SearchContextSize(_Section):
    """What one ``search_context_size`` means: pages read, and how much of them reaches the model."""

    results: int = Field(ge=1, le=50)  # search results read (pages fetched)
    top_k: int = Field(ge=1, le=100)  # chunks given to the model
    context_tokens: int = Field(ge=100)  # token budget for those chunks


def _default_search_context_sizes() -> dict[str, SearchContextSize]:
    return {
        "low": SearchContextSize(results=3, top_k=4, context_tokens=900),
        "medium": SearchContextSize(results=5, top_k=6, context_tokens=1500),
        "high": SearchContextSize(results=8, top_k=10, context_tokens=2400),
    }


class SearchSettings(_Section):
    """Web search: providers tried in ``providers`` order (failover), a result cache. How the pages of
    the results are read is ``[fetch]``."""

    # A provider without what it needs (no base_url, no API key) is skipped as "not configured".
    providers: list[ProviderName] = Field(
        default_factory=lambda: ["searxng", "brave", "tavily", "duckduckgo"]
    )  # type: ignore[arg-type]
    max_results: int = Field(10, ge=1, le=50)  # results asked of a provider
    timeout_s: float = Field(10.0, gt=0)  # one provider call, all included
    cache_ttl_s: float = Field(3600.0, ge=0)  # 0 turns the result cache off
    context_size: ContextSizeName = "low"  # default search_context_size
    context_sizes: dict[ContextSizeName, SearchContextSize] = Field(
        default_factory=_default_search_context_sizes
    )  # type: ignore[arg-type]
    max_chunks_per_page: int = Field(24, ge=1)  # ranking reads at most this many chunks of one page
    # Date filters need a date: "drop" leaves out results whose date neither the provider nor the page
    # states; "keep" lets them through.
    undated: Literal["drop", "keep"] = "drop"
    searxng: SearxngSettings = Field(default_factory=SearxngSettings)
    duckduckgo: DuckDuckGoSettings = Field(default_factory=DuckDuckGoSettings)
    brave: BraveSettings = Field(default_factory=BraveSettings)
    tavily: TavilySettings = Field(default_factory=TavilySettings)
    local: LocalSearchSettings = Field(default_factory=LocalSearchSettings)

    @field_validator("context_sizes", mode="before")
    @classmethod
    def _merge_context_sizes(cls, value: Any) -> Any:
        """A config that sets one size keeps the built-in others."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_search_context_sizes().items()}
        merged.update(value)
        return merged

    @field_validator("providers")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each provider may appear once")
        return value


# --- images in questions -----------------------------------------------------------------------------


class VisionSettings(_Section):
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


class EffortOverride(_Section):
    """Fields of one effort preset to change (see ``groundglass.answer.effort``); unset keeps the preset's."""

    max_sub_queries: int | None = Field(None, ge=1, le=16)
    max_rounds: int | None = Field(None, ge=1, le=10)
    sources_per_query: int | None = Field(None, ge=1, le=100)
    context_tokens: int | None = Field(None, ge=100)
    answer_max_tokens: int | None = Field(None, ge=1)
    think: bool | None = None
    related_questions: bool | None = None
    answer_style: Literal["brief", "detailed", "report"] | None = None


class ReasoningSettings(_Section):
    """``reasoning_effort``: the level used when a request names none, and per-model changes to the
    built-in presets, keyed by model name or glob, e.g. ``[reasoning.models."sonar-pro".high]``
    ``max_sub_queries = 6`` or ``[reasoning.models."*".medium]`` for every model."""

    # minimal: one search for the question as asked (the fastest; what `groundglass ask` does unless
    # --reasoning-effort says otherwise)
    default_effort: EffortName = "minimal"
    models: dict[str, dict[EffortName, EffortOverride]] = Field(default_factory=dict)


class Settings(_Section):
    home: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("groundglass")))
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    reasoning: ReasoningSettings = Field(default_factory=ReasoningSettings)

    @model_validator(mode="before")
    @classmethod
    def _old_fetch_keys(cls, data: Any) -> Any:
        return moved_to_fetch(data)

    @property
    def indexes_dir(self) -> Path:
        return self.home / "indexes"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def config_path(explicit: Path | None = None) -> Path | None:
    """The config file in effect, or None when there is none."""
    if explicit is not None:
        if not explicit.is_file():
            raise GroundglassError(f"config file {explicit} does not exist", "check the --config path")
        return explicit
    env = os.environ.get("GROUNDGLASS_CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise GroundglassError(
                f"$GROUNDGLASS_CONFIG points to {p}, which does not exist", "fix or unset GROUNDGLASS_CONFIG"
            )
        return p
    home = os.environ.get("GROUNDGLASS_HOME")
    base = Path(home) if home else Path(platformdirs.user_data_dir("groundglass"))
    p = base / "config.toml"
    return p if p.is_file() else None


def load_settings(explicit: Path | None = None, **overrides: Any) -> Settings:
    """Read the config file and environment once; raise a clear error on bad keys or types."""
    data: dict[str, Any] = {}
    path = config_path(explicit)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise GroundglassError(f"config file {path} is not valid TOML: {exc}", "fix the syntax") from exc
    if os.environ.get("GROUNDGLASS_HOME"):
        data["home"] = os.environ["GROUNDGLASS_HOME"]
    if os.environ.get("GROUNDGLASS_MODEL"):
        data.setdefault("llm", {})["model"] = os.environ["GROUNDGLASS_MODEL"]
    if os.environ.get("GROUNDGLASS_LLM_THREADS"):
        # llama.cpp threads spin-wait on each other: on a busy machine 1 thread is several times faster.
        data.setdefault("llm", {})["threads"] = os.environ["GROUNDGLASS_LLM_THREADS"]
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[section] = value
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        src = f" in {path}" if path else ""
        raise GroundglassError(
            f"bad setting {where!r}{src}: {first['msg']}", "see `groundglass config show` for valid keys"
        ) from exc
    settings.home = settings.home.expanduser()
    return settings
