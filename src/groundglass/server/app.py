"""The FastAPI app factory: ``create_app(settings)`` wires routers, middleware, error handlers and the
job worker's lifespan; ``app_from_env()`` is what ``groundglass serve`` (and ``uvicorn --factory``)
runs in each worker process.

Routes::

    POST /chat/completions, /v1/chat/completions       chat (Perplexity/OpenAI), streaming or not
    GET  /v1/models                                     API model names (presets)
    POST /v1/responses, /v1/agent; GET /v1/responses/{id}   OpenAI Responses / Perplexity Agent API
    POST /search                                        Perplexity Search API
    POST|GET /async/chat/completions[/{id}]             Perplexity async requests
    /v1/files, /v1/batches                              OpenAI Batch API
    GET  /v1/usage                                      usage and cost, grouped
    GET  /healthz, /metrics, /openapi.json, /docs       operations (/docs: its files served from here)
    /v1/threads[/{id}[/turns|/share]], /v1/shared/{id}  saved conversations (the web page's history)
    GET  /v1/indexes                                    local indexes a request may name
    GET  /, /share/{id}, /static/*                      the web page
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi_offline import FastAPIOffline

from groundglass import __version__
from groundglass.server import chat, indexes_api, jobs_api, ops, responses, search_api, threads, ui
from groundglass.server.answering import Answerer
from groundglass.server.auth import KeyStore
from groundglass.server.body_limit import BodyLimitMiddleware
from groundglass.server.db import get_engine
from groundglass.server.error_handlers import install_error_handlers
from groundglass.server.errors import APIError
from groundglass.server.files import FileStore
from groundglass.server.finetune import wiring as finetune
from groundglass.server.job_worker import JobWorker
from groundglass.server.jobs import JobStore
from groundglass.server.limits import RateLimits
from groundglass.server.metrics import Metrics
from groundglass.server.metrics_middleware import MetricsMiddleware
from groundglass.server.search_service import ProviderSearch
from groundglass.server.state import ServerState, caller
from groundglass.server.usage import Ledger, Pricing, endpoint_name, new_request_id, usage_entry
from groundglass.threads import native_thread

if TYPE_CHECKING:
    from groundglass.config import Settings

OPEN_ENV = "GROUNDGLASS_SERVE_OPEN"  # set by `groundglass serve --open` for its worker processes
CONFIG_ENV = "GROUNDGLASS_CONFIG"


def build_state(settings: Settings) -> ServerState:
    engine = get_engine(settings)
    ledger = Ledger(engine)
    metrics = Metrics()
    answerer = Answerer(settings, metrics)
    files = FileStore(engine)
    return ServerState(
        settings=settings,
        db=engine,
        keys=KeyStore(engine, settings),
        limits=RateLimits(settings.server.rate_limit_storage),
        ledger=ledger,
        pricing=Pricing(settings.server),
        answerer=answerer,
        metrics=metrics,
        files=files,
        jobs=JobStore(engine, ledger, files),
        search=ProviderSearch(settings),
        started_at=time.time(),
    )


def create_app(settings: Settings, *, run_jobs: bool = True) -> FastAPI:
    """The API for ``settings``. ``run_jobs=False`` leaves async/batch lines queued (no worker)."""
    st = build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.server.warm_up:
            native_thread(st.answerer.warm_up, "warm-up").start()
        if run_jobs:
            st.worker = JobWorker(st, settings.server.job_concurrency, settings.server.job_lease_s)
            st.worker.start()
        if run_jobs:
            finetune.start(app.state.finetune)
        try:
            yield
        finally:
            if st.worker is not None:
                await st.worker.stop()
            await run_in_threadpool(finetune.stop, app.state.finetune)

    # FastAPIOffline: FastAPI whose /docs loads Swagger UI from files it ships (under static_url)
    # instead of cdn.jsdelivr.net, so the docs work on a machine with no internet. No /redoc: ReDoc's
    # page still fetches its logo from cdn.redoc.ly.
    app = FastAPIOffline(
        title="groundglass",
        version=__version__,
        summary="Grounded answers with citations: a Perplexity- and OpenAI-compatible API.",
        description="Send `Authorization: Bearer KEY` (keys: `groundglass keys create --project NAME`). "
        'Errors are OpenAI-style: `{"error": {"message", "type", "param", "code"}}`.',
        lifespan=lifespan,
        static_url="/docs/assets",
        redoc_url=None,
    )
    app.state.gg = st
    app.state.on_rejected = _recorder(st)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.server.max_body_bytes,
        max_file_bytes=settings.server.max_file_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=st.metrics)
    finetune.install(app, st)  # first: its /v1/models adds the image models to the answer presets
    app.include_router(chat.router)
    app.include_router(responses.router)
    app.include_router(search_api.router)
    app.include_router(jobs_api.router)
    app.include_router(ops.router)
    app.include_router(threads.router)
    app.include_router(indexes_api.router)
    app.include_router(ui.router)  # the web page at /, and its assets under /static
    app.mount("/static", ui.assets(), name="static")
    return app


# the routes whose requests the ledger records
BILLED_ROUTES = ("/chat/completions", "/search", "/v1/responses", "/v1/agent")


def _recorder(st: ServerState) -> Callable[[Request, APIError], Awaitable[None]]:
    """Ledger rows for requests refused before their route ran (malformed JSON, bad fields)."""

    async def record(request: Request, error: APIError) -> None:
        endpoint = endpoint_name(request.url.path)
        if request.method != "POST" or endpoint not in BILLED_ROUTES:
            return
        try:
            who = await caller(request)
        except APIError:
            return  # no valid key: nobody to bill
        await st.record(
            usage_entry(
                who,
                request_id=new_request_id(),
                model="",
                endpoint=endpoint,
                status=error.status,
                started=time.perf_counter(),
            )
        )

    return record


def app_from_env() -> FastAPI:
    """The app as configured by the environment (config file, $GROUNDGLASS_HOME, `serve` flags)."""
    from groundglass.config import load_settings
    from groundglass.log import configure_logging

    configure_logging()
    overrides = {"server__open": True} if os.environ.get(OPEN_ENV) == "1" else {}
    return create_app(load_settings(**overrides))
