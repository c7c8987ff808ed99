"""Operator endpoints: ``/healthz``, ``/metrics`` (Prometheus text format) and ``GET /v1/usage``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from groundglass import __version__
from groundglass.errors import GroundglassError
from groundglass.server.auth import Principal
from groundglass.server.errors import APIError
from groundglass.server.state import caller, state

router = APIRouter()


@router.get("/healthz", tags=["ops"], summary="Liveness and dependencies")
async def healthz(request: Request) -> Any:
    st = state(request)

    def db_ok() -> bool:
        try:
            with st.db.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    checks = {"database": await run_in_threadpool(db_ok), "rate_limit_storage": await st.limits.check()}
    ok = all(checks.values())
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "checks": checks,
        "open": st.settings.server.open,
        "uptime_s": round(time.time() - st.started_at, 1),
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", tags=["ops"], summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    data, content_type = state(request).metrics.render()
    return Response(data, media_type=content_type)


@router.get("/v1/usage", tags=["usage"], summary="Usage and cost, grouped")
async def usage(
    request: Request,
    who: Principal = Depends(caller),
    group_by: str = Query("day,model", description="comma-separated: key, project, model, day, endpoint"),
    start: str | None = Query(None, description="first UTC day, YYYY-MM-DD"),
    end: str | None = Query(None, description="last UTC day, YYYY-MM-DD (inclusive)"),
    project: str | None = Query(None, description="admin keys: one project (default: all)"),
    key: str | None = Query(None, description="one key id"),
) -> Any:
    """Totals of requests, tokens, searches and cost. A key sees its own project; admin keys see all."""
    st = state(request)
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    if not who.admin:
        if project is not None and project != who.project:
            raise APIError(
                403, "this key may only read the usage of its own project", code="forbidden", param="project"
            )
        project = who.project
    try:
        rows = await run_in_threadpool(
            lambda: st.ledger.report(groups, project=project, key_id=key, start=start, end=end)
        )
    except GroundglassError as exc:
        raise APIError(exc.status, str(exc), code=exc.code, param=exc.param) from exc
    return {"object": "list", "group_by": groups, "data": rows}
