"""What one running server holds (settings, database, keys, limits, ledger, engine bridge, jobs), and
the FastAPI dependencies that hand it, and the calling key, to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from groundglass.server.auth import KeyStore, Principal, bearer_token, open_principal
from groundglass.server.errors import APIError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.config import Settings
    from groundglass.server.answering import Answerer
    from groundglass.server.files import FileStore
    from groundglass.server.job_worker import JobWorker
    from groundglass.server.jobs import JobStore
    from groundglass.server.limits import RateLimits
    from groundglass.server.metrics import Metrics
    from groundglass.server.search_service import SearchBackend
    from groundglass.server.usage import Ledger, Pricing


@dataclass
class ServerState:
    settings: Settings
    db: Engine
    keys: KeyStore
    limits: RateLimits
    ledger: Ledger
    pricing: Pricing
    answerer: Answerer
    metrics: Metrics
    files: FileStore
    jobs: JobStore
    search: SearchBackend
    worker: JobWorker | None = None
    started_at: float = 0.0

    async def record(self, entry: object) -> None:
        """Write a ledger row off the event loop."""
        await run_in_threadpool(self.ledger.record, entry)  # type: ignore[arg-type]


def state(request: Request) -> ServerState:
    return request.app.state.gg  # type: ignore[no-any-return]


async def caller(request: Request) -> Principal:
    """The key behind this request (401 without a valid one, unless the server runs in open mode)."""
    st = state(request)
    token = bearer_token(request.headers.get("authorization"))
    who = await run_in_threadpool(st.keys.lookup, token) if token else None
    if who is not None:
        return who
    if st.settings.server.open:
        return open_principal(st.settings)
    if token is None:
        raise APIError(
            401,
            "no API key: send it as 'Authorization: Bearer KEY' "
            "(create one with `groundglass keys create --project NAME`)",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    raise APIError(
        401,
        "invalid or revoked API key: check that the whole key is sent as 'Authorization: Bearer KEY' "
        "(`groundglass keys list` shows the active keys; `groundglass keys create --project NAME` makes one)",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )
