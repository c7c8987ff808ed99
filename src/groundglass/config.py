"""Settings: one typed object, read from a TOML file plus the environment, validated once.

Lookup order for the config file: ``--config PATH`` (CLI), ``$GROUNDGLASS_CONFIG``,
``$GROUNDGLASS_HOME/config.toml``. All state lives under ``home``
(``$GROUNDGLASS_HOME``, default: the XDG data folder ``~/.local/share/groundglass``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from groundglass.errors import GroundglassError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMSettings(_Section):
    # "default" (Qwen2.5-Coder-1.5B), "fast" (0.5B), "tiny" (SmolLM2-135M), a path to a .gguf file,
    # or "openai:MODEL@BASE_URL" for any OpenAI-compatible endpoint.
    model: str = "default"
    api_key: str | None = None  # for openai: specs; falls back to $GROUNDGLASS_LLM_API_KEY / $OPENAI_API_KEY
    context_length: int = 4096
    threads: int | None = None
    max_tokens: int = 512
    temperature: float = 0.2
    timeout_s: float = 120.0


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


class CrawlSettings(_Section):
    max_pages: int = 200
    max_depth: int = 3
    user_agent: str = "groundglass/0.1 (+https://github.com/groundglass)"
    allow_private: bool = False  # the page reader refuses private/loopback addresses unless this is on
    allowed_networks: list[str] = Field(default_factory=list)  # CIDRs trusted despite being private
    timeout_s: float = 15.0
    max_bytes: int = 10_000_000


class ContextSize(_Section):
    """How much retrieved text a request gets at one ``web_search_options.search_context_size``."""

    top_k: int = Field(6, ge=1, le=100)  # sources given to the model
    context_tokens: int = Field(1200, ge=100)  # token budget for those sources


class ModelPreset(_Section):
    """What one API model name (``sonar``, ``sonar-pro``, ...) runs: a pipeline preset.

    ``llm`` is a model spec (see ``llm.model``); empty means ``llm.model``. ``max_tokens`` caps the
    answer; ``top_k``/``context_tokens`` apply at the default ``search_context_size`` and scale with
    ``server.context_sizes`` when a request asks for another size.
    """

    llm: str = ""
    index: str = ""  # empty: retrieval.index
    top_k: int = Field(6, ge=1, le=100)
    context_tokens: int = Field(1200, ge=100)
    max_tokens: int = Field(512, ge=1)
    reasoning_effort: Literal["low", "medium", "high"] = "low"
    search_context_size: Literal["low", "medium", "high"] = "low"
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
        default_factory=lambda: {"low": 5.0, "medium": 8.0, "high": 12.0})


def _default_presets() -> dict[str, ModelPreset]:
    return {
        "sonar": ModelPreset(top_k=6, context_tokens=1200, max_tokens=512, reasoning_effort="low",
                             description="Fast grounded answers: few sources, short answers."),
        "sonar-pro": ModelPreset(top_k=10, context_tokens=2000, max_tokens=1024, reasoning_effort="medium",
                                 description="More sources and longer answers."),
        "sonar-reasoning-pro": ModelPreset(top_k=10, context_tokens=2000, max_tokens=2048,
                                           reasoning_effort="high",
                                           description="sonar-pro with high reasoning effort."),
        "sonar-deep-research": ModelPreset(top_k=16, context_tokens=3000, max_tokens=4096,
                                           reasoning_effort="high", search_context_size="high",
                                           description="The most sources and the longest answers."),
    }


def _default_prices() -> dict[str, PricePlan]:
    # Perplexity's published Sonar prices (USD) as defaults; set your own under [server.prices.NAME].
    return {
        "sonar": PricePlan(input_per_million=1, output_per_million=1,
                           request_fee_per_thousand={"low": 5, "medium": 8, "high": 12}),
        "sonar-pro": PricePlan(input_per_million=3, output_per_million=15,
                               request_fee_per_thousand={"low": 6, "medium": 10, "high": 14}),
        "sonar-reasoning-pro": PricePlan(input_per_million=2, output_per_million=8,
                                         request_fee_per_thousand={"low": 6, "medium": 10, "high": 14}),
        "sonar-deep-research": PricePlan(input_per_million=2, output_per_million=8, citation_per_million=2,
                                         reasoning_per_million=3, search_queries_per_thousand=5,
                                         request_fee_per_thousand={"low": 0, "medium": 0, "high": 0}),
    }


def _default_context_sizes() -> dict[str, float]:
    return {"low": 1.0, "medium": 1.5, "high": 2.0}


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
    max_body_bytes: int = Field(1_000_000, ge=1024)  # JSON request bodies
    max_file_bytes: int = Field(100_000_000, ge=1024)  # uploads to /v1/files
    max_batch_lines: int = Field(50_000, ge=1)
    job_concurrency: int = Field(1, ge=1)  # engine runs at once for async and batch jobs, per process
    job_lease_s: float = Field(30.0, gt=0)  # a job line claimed by a process that died is retried after this
    engine_concurrency: int = Field(1, ge=1)  # engine runs at once for all requests, per process
    search_price_per_thousand: float = Field(5.0, ge=0)  # POST /search, per 1000 requests
    models: dict[str, ModelPreset] = Field(default_factory=_default_presets)
    prices: dict[str, PricePlan] = Field(default_factory=_default_prices)
    # Multiplier of a preset's top_k and context_tokens for each search_context_size, relative to the
    # preset's own size.
    context_sizes: dict[Literal["low", "medium", "high"], float] = Field(default_factory=_default_context_sizes)

    @field_validator("models", "prices", "context_sizes", mode="before")
    @classmethod
    def _merge_with_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        """A config that names one preset or price adds to the built-in ones instead of replacing them."""
        if not isinstance(value, dict):
            return value
        defaults = {"models": _default_presets, "prices": _default_prices,
                    "context_sizes": _default_context_sizes}[info.field_name]()
        merged: dict[str, Any] = {k: (v.model_dump() if isinstance(v, BaseModel) else v)
                                  for k, v in defaults.items()}
        merged.update(value)
        return merged


class Settings(_Section):
    home: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("groundglass")))
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    # Sections owned by later engines (search, dreambooth) are free-form until they land.
    search: dict[str, Any] = Field(default_factory=dict)

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
            raise GroundglassError(f"$GROUNDGLASS_CONFIG points to {p}, which does not exist",
                                   "fix or unset GROUNDGLASS_CONFIG")
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
        raise GroundglassError(f"bad setting {where!r}{src}: {first['msg']}",
                               "see `groundglass config show` for valid keys") from exc
    settings.home = settings.home.expanduser()
    return settings
