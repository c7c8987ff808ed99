"""The usage and cost ledger: one row per request, priced from a Sonar-structured price table.

Cost of one chat request, in US dollars, from ``server.prices[MODEL]`` (``server.prices["default"]``
for a model without its own plan, free when there is neither)::

    input_tokens_cost     = prompt_tokens      * input_per_million     / 1e6
    output_tokens_cost    = completion_tokens  * output_per_million    / 1e6
    citation_tokens_cost  = citation_tokens    * citation_per_million  / 1e6
    reasoning_tokens_cost = reasoning_tokens   * reasoning_per_million / 1e6
    search_queries_cost   = num_search_queries * search_queries_per_thousand / 1000
    request_cost          = request_fee_per_thousand[search_context_size] / 1000
    total_cost            = the sum

DreamBooth, from the plan of the base model: a fine-tuning job's row (written when it ends, in the
transaction that ends it) has ``request_cost = training_steps * training_steps_per_thousand / 1000 +
device_seconds * device_seconds_per_hour / 3600``; an image request's, ``images *
images_per_thousand / 1000``.

``POST /search`` costs ``server.search_price_per_thousand / 1000`` per request. Rows are written in
the same transaction as a batch line's result, so a restarted batch never bills a line twice.

Every request, finished, failed, refused or abandoned, leaves one row: :func:`usage_entry` builds it
for a caller and a request id (:func:`new_request_id`), :func:`record_refusal` writes the row of a
request refused before any work.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
from sqlalchemy import Connection, case, func, insert, select

from groundglass.errors import GroundglassError
from groundglass.server import db

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.config import PricePlan, ServerSettings
    from groundglass.server.auth import Principal
    from groundglass.server.errors import APIError
    from groundglass.server.metrics import Metrics

GROUPS = ("key", "project", "model", "day", "endpoint")
_GROUP_COLUMNS = {
    "key": "key_id",
    "project": "project",
    "model": "model",
    "day": "day",
    "endpoint": "endpoint",
}
COST_PARTS = (
    "input_tokens_cost",
    "output_tokens_cost",
    "citation_tokens_cost",
    "reasoning_tokens_cost",
    "search_queries_cost",
    "request_cost",
)


@dataclass
class Cost:
    input_tokens_cost: float = 0.0
    output_tokens_cost: float = 0.0
    citation_tokens_cost: float = 0.0
    reasoning_tokens_cost: float = 0.0
    search_queries_cost: float = 0.0
    request_cost: float = 0.0

    @property
    def total_cost(self) -> float:
        return round(sum(getattr(self, p) for p in COST_PARTS), 6)

    def as_dict(self) -> dict[str, float]:
        out = {k: round(v, 6) for k, v in asdict(self).items()}
        out["total_cost"] = self.total_cost
        return out


@dataclass
class UsageEntry:
    """One request as the ledger records it."""

    request_id: str
    key_id: str
    project: str
    model: str
    endpoint: str
    status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0
    citation_tokens: int = 0
    reasoning_tokens: int = 0
    num_search_queries: int = 0
    search_context_size: str | None = None
    latency_ms: float = 0.0
    training_steps: int = 0
    device_seconds: float = 0.0
    images: int = 0
    cost: Cost = field(default_factory=Cost)
    created_at: float = field(default_factory=time.time)

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cost")
        data.update(self.cost.as_dict())
        data["day"] = dt.datetime.fromtimestamp(self.created_at, dt.UTC).strftime("%Y-%m-%d")
        return data


class Pricing:
    def __init__(self, server: ServerSettings) -> None:
        self.plans = server.prices
        self.search_fee = server.search_price_per_thousand

    def plan(self, model: str) -> PricePlan | None:
        return self.plans.get(model) or self.plans.get("default")

    def chat(
        self,
        model: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        citation_tokens: int = 0,
        reasoning_tokens: int = 0,
        num_search_queries: int = 0,
        search_context_size: Literal["low", "medium", "high"] = "low",
    ) -> Cost:
        p = self.plan(model)
        if p is None:
            return Cost()
        return Cost(
            input_tokens_cost=prompt_tokens * p.input_per_million / 1e6,
            output_tokens_cost=completion_tokens * p.output_per_million / 1e6,
            citation_tokens_cost=citation_tokens * p.citation_per_million / 1e6,
            reasoning_tokens_cost=reasoning_tokens * p.reasoning_per_million / 1e6,
            search_queries_cost=num_search_queries * p.search_queries_per_thousand / 1000,
            request_cost=p.request_fee_per_thousand.get(search_context_size, 0.0) / 1000,
        )

    def search(self) -> Cost:
        return Cost(request_cost=self.search_fee / 1000)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, entry: UsageEntry, conn: Connection | None = None) -> None:
        """Write one row; inside ``conn``'s transaction when given (batch lines), else on its own."""
        row = db.fit(db.usage, entry.row())  # a client's model name, cut to the column, never refused
        if conn is not None:
            conn.execute(insert(db.usage).values(**row))
            return
        with self.engine.begin() as c:
            c.execute(insert(db.usage).values(**row))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(db.usage)).scalar_one())

    def report(
        self,
        group_by: list[str],
        *,
        project: str | None = None,
        key_id: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> list[dict[str, Any]]:
        """Totals grouped by any of key, project, model, day, endpoint; days are UTC, ``end`` inclusive."""
        _check_report(group_by, start, end)
        u = db.usage.c
        keys = [u[_GROUP_COLUMNS[g]].label(g) for g in group_by]
        sums = [
            func.count().label("requests"),
            func.sum(u.prompt_tokens).label("prompt_tokens"),
            func.sum(u.completion_tokens).label("completion_tokens"),
            func.sum(u.citation_tokens).label("citation_tokens"),
            func.sum(u.reasoning_tokens).label("reasoning_tokens"),
            func.sum(u.num_search_queries).label("num_search_queries"),
            func.sum(u.training_steps).label("training_steps"),
            func.sum(u.device_seconds).label("device_seconds"),
            func.sum(u.images).label("images"),
            func.sum(u.total_cost).label("total_cost"),
            func.avg(u.latency_ms).label("avg_latency_ms"),
            func.sum(case((u.status >= 400, 1), else_=0)).label("errors"),
        ] + [func.sum(u[p]).label(p) for p in COST_PARTS]
        q = select(*keys, *sums)
        if project is not None:
            q = q.where(u.project == project)
        if key_id is not None:
            q = q.where(u.key_id == key_id)
        if start is not None:
            q = q.where(u.day >= start)
        if end is not None:
            q = q.where(u.day <= end)
        if keys:
            q = q.group_by(*keys).order_by(*keys)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            for k, v in r.items():
                if v is None and k not in group_by:
                    r[k] = 0
                elif isinstance(v, float):
                    r[k] = round(v, 6 if "cost" in k else 2)
        return [r for r in rows if r["requests"]]


def _check_report(group_by: list[str], start: str | None, end: str | None) -> None:
    """Refuse a grouping or a day a usage report cannot take, naming the parameter."""
    bad = [g for g in group_by if g not in GROUPS]
    if bad:
        raise GroundglassError(
            f"cannot group usage by {', '.join(bad)}",
            f"group by any of: {', '.join(GROUPS)}",
            param="group_by",
        )
    for name, day in (("start", start), ("end", end)):
        if day is not None:
            try:
                dt.date.fromisoformat(day)
            except ValueError as exc:
                raise GroundglassError(
                    f"{name} must be a date like 2025-01-31, got {day!r}",
                    "write dates as YYYY-MM-DD",
                    param=name,
                ) from exc


def new_request_id() -> str:
    return f"gg-{uuid.uuid4().hex}"


def endpoint_name(path: str) -> str:
    """One name per endpoint in the ledger: ``/v1/chat/completions`` and ``/chat/completions`` are one,
    and so are ``/v1/agent`` and ``/v1/responses`` (Perplexity's and OpenAI's paths for one API)."""
    path = path.rstrip("/") or "/"
    if path == "/v1/agent":
        return "/v1/responses"
    return path.removeprefix("/v1") if path.endswith("/chat/completions") else path


def streamed_usage(n_tokens: int, queries: Sequence[str], context_size: str | None) -> dict[str, Any] | None:
    """The usage to bill for a stream that ended early: what was generated so far (None: nothing was)."""
    if not n_tokens:
        return None
    return {
        "completion_tokens": n_tokens,
        "num_search_queries": len(queries),
        "search_context_size": context_size,
    }


def usage_entry(
    who: Principal,
    *,
    request_id: str,
    model: str,
    endpoint: str,
    status: int,
    started: float,
    usage: dict[str, Any] | None = None,
    cost: Cost | None = None,
) -> UsageEntry:
    """The ledger row of one request by ``who``, from its ``usage`` block (none: nothing billed but the
    row itself); ``started`` is its ``time.perf_counter()`` start."""
    u = usage or {}
    return UsageEntry(
        request_id=request_id,
        key_id=who.key_id,
        project=who.project,
        model=model,
        endpoint=endpoint_name(endpoint),
        status=status,
        prompt_tokens=int(u.get("prompt_tokens", 0)),
        completion_tokens=int(u.get("completion_tokens", 0)),
        citation_tokens=int(u.get("citation_tokens", 0)),
        reasoning_tokens=int(u.get("reasoning_tokens", 0)),
        num_search_queries=int(u.get("num_search_queries", 0)),
        search_context_size=u.get("search_context_size"),
        latency_ms=(time.perf_counter() - started) * 1000,
        cost=cost or Cost(),
    )


class LedgerContext(Protocol):
    """What recording a refusal needs of the server (the server's state provides it)."""

    ledger: Ledger
    metrics: Metrics


async def record_refusal(
    st: LedgerContext,
    who: Principal,
    exc: APIError,
    *,
    request_id: str,
    model: str,
    endpoint: str,
    started: float,
) -> None:
    """A request refused before any work (limits, bad input): counted, and in the ledger with its status."""
    if exc.status == 429:
        st.metrics.rate_limited.inc()
    entry = usage_entry(
        who, request_id=request_id, model=model, endpoint=endpoint, status=exc.status, started=started
    )
    await anyio.to_thread.run_sync(st.ledger.record, entry)  # off the event loop
