"""Prometheus metrics (prometheus-client); :mod:`groundglass.server.metrics_middleware` feeds the HTTP ones.

Each app gets its own registry, so several apps in one process (tests) do not collide. With
``uvicorn --workers N`` every process keeps its own counters; set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty folder before starting to have ``/metrics`` add up all processes (prometheus-client's
multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "groundglass_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "groundglass_http_request_duration_seconds",
            "Time from request to the end of the response",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.tokens = Counter("groundglass_tokens", "Tokens processed", ["kind"], registry=r)
        self.rate_limited = Counter(
            "groundglass_rate_limited_requests", "Requests refused with 429", registry=r
        )
        self.engine_inflight = Gauge(
            "groundglass_engine_inflight", "Engine runs in progress", registry=r, multiprocess_mode="livesum"
        )
        self.engine_waiting = Gauge(
            "groundglass_engine_waiting",
            "Requests waiting for an engine slot",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.job_items = Counter(
            "groundglass_job_items", "Async/batch lines finished", ["status"], registry=r
        )

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
