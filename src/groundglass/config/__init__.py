"""Settings: one typed object, read from a TOML file plus the environment, validated once.

Lookup order for the config file: ``--config PATH`` (CLI), ``$GROUNDGLASS_CONFIG``,
``$GROUNDGLASS_HOME/config.toml``. All state lives under ``home``
(``$GROUNDGLASS_HOME``, default: the XDG data folder ``~/.local/share/groundglass``).

The sections live in one module per part of the house: :mod:`.answer` (``[llm]``, ``[retrieval]``,
``[vision]``, ``[reasoning]``), :mod:`.search` (``[search]``), :mod:`.fetch` (``[fetch]``, ``[crawl]``),
:mod:`.server` (``[server]``); every name is imported from here (``from groundglass.config import ...``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, ValidationError, model_validator

from groundglass.config.answer import (
    EffortName,
    EffortOverride,
    LLMSettings,
    ReasoningSettings,
    RetrievalSettings,
    VisionSettings,
)
from groundglass.config.fetch import (
    OLD_FETCH_KEYS,
    CrawlSettings,
    FetchSettings,
    moved_to_fetch,
)
from groundglass.config.search import (
    BraveSettings,
    ContextSizeName,
    DuckDuckGoSettings,
    LocalSearchSettings,
    ProviderName,
    SearchContextSize,
    SearchSettings,
    SearxngSettings,
    TavilySettings,
)
from groundglass.config.section import Section, renamed_keys
from groundglass.config.server import DEFAULT_MAX_BODY_BYTES, ModelPreset, PricePlan, ServerSettings
from groundglass.errors import GroundglassError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "OLD_FETCH_KEYS",
    "BraveSettings",
    "ContextSizeName",
    "CrawlSettings",
    "DuckDuckGoSettings",
    "EffortName",
    "EffortOverride",
    "FetchSettings",
    "LLMSettings",
    "LocalSearchSettings",
    "ModelPreset",
    "PricePlan",
    "ProviderName",
    "ReasoningSettings",
    "RetrievalSettings",
    "SearchContextSize",
    "SearchSettings",
    "SearxngSettings",
    "Section",
    "ServerSettings",
    "Settings",
    "TavilySettings",
    "VisionSettings",
    "config_path",
    "load_settings",
    "renamed_keys",
]


class Settings(Section):
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
    from_env: dict[tuple[str, ...], str] = {}  # settings an environment variable gave, for errors
    if os.environ.get("GROUNDGLASS_HOME"):
        data["home"] = os.environ["GROUNDGLASS_HOME"]
    if os.environ.get("GROUNDGLASS_MODEL"):
        data.setdefault("llm", {})["model"] = os.environ["GROUNDGLASS_MODEL"]
        from_env[("llm", "model")] = "GROUNDGLASS_MODEL"
    if os.environ.get("GROUNDGLASS_LLM_THREADS"):
        # llama.cpp threads spin-wait on each other: on a busy machine 1 thread is several times faster.
        data.setdefault("llm", {})["threads"] = os.environ["GROUNDGLASS_LLM_THREADS"]
        from_env[("llm", "threads")] = "GROUNDGLASS_LLM_THREADS"
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
        loc = tuple(str(p) for p in first["loc"])
        where = ".".join(loc)
        env = from_env.get(loc)
        src = f" from ${env}" if env else f" in {path}" if path else ""
        fix = (
            f"set ${env} to a valid value, or unset it"
            if env
            else "see `groundglass config show` for valid keys"
        )
        raise GroundglassError(f"bad setting {where!r}{src}: {first['msg']}", fix) from exc
    settings.home = settings.home.expanduser()
    return settings
