"""What one web search did, for the answer's metadata (``search_report``): the providers tried and
why each failed, the pages read, the results left out and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from groundglass.answer.reader import ReadFailure
from groundglass.answer.search.failover import ProviderAttempt


@dataclass
class SearchReport:
    """What the search did, for the answer's metadata."""

    query: str
    context_size: str
    top_k: int  # chunks the model should get
    context_tokens: int  # token budget for them
    provider: str | None = None  # whose results were used
    cached: bool = False
    attempts: list[ProviderAttempt] = field(default_factory=list)
    results: int = 0  # results the provider returned
    pages: list[dict[str, Any]] = field(default_factory=list)  # pages read and used
    failures: list[ReadFailure] = field(default_factory=list)  # results not used, and why
    error: str | None = None  # set when no source is left: why, in one line
    timings: dict[str, float] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)  # return_images: best first (images.py)

    @property
    def providers_used(self) -> list[str]:
        return [self.provider] if self.provider else []

    @property
    def location_used_by(self) -> dict[str, list[str]]:
        """The parts of the asker's location the provider whose results these are was given."""
        return {a.provider: a.location for a in self.attempts if a.provider == self.provider and a.location}

    @property
    def providers_failed(self) -> list[str]:
        """Providers that failed or found nothing, except the one whose (empty) answer was used."""
        return [
            a.provider
            for a in self.attempts
            if a.outcome == "failed" or (a.outcome == "empty" and a.provider != self.provider)
        ]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["providers_used"] = self.providers_used
        out["location_used_by"] = self.location_used_by
        del out["images"]  # the answer's own field (Found.report lists them once)
        return out

    def summary(self) -> str:
        if self.error:
            return self.error
        how = "cached " if self.cached else ""
        return (
            f"{how}{self.provider}: {self.results} results, {len(self.pages)} pages read, "
            f"{len(self.failures)} not used"
        )
