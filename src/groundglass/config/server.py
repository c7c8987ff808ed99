"""``[server]``: ``groundglass serve``'s address, keys, limits, ledger, jobs, and the API's model
names (presets) and prices."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from groundglass.config.section import Section, renamed_keys
from groundglass.errors import GroundglassError


class ModelPreset(Section):
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
    source: Literal["index", "web"] = "index"
    description: str = ""


class PricePlan(Section):
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


class ServerSettings(Section):
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
        if info.field_name == "models":
            # a preset's `search` said where its sources come from; [search] is the web search's table
            value = {
                name: renamed_keys(preset, f"server.models.{name}", {"search": "source"})
                for name, preset in value.items()
            }
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
