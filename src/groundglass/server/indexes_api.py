"""``GET /v1/indexes``: the local indexes a request can name in ``index`` (with ``source: "index"``),
with their sizes, and which one is searched when a request names none."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from groundglass.errors import GroundglassError
from groundglass.server.auth import Principal
from groundglass.server.state import caller, state

router = APIRouter(tags=["search"])


@router.get("/v1/indexes", summary="Local indexes")
async def list_indexes(request: Request, who: Principal = Depends(caller)) -> dict[str, Any]:
    settings = state(request).settings
    data = await run_in_threadpool(_describe_all, settings)
    return {"object": "list", "data": data, "default": settings.retrieval.index}


def _describe_all(settings: Any) -> list[dict[str, Any]]:
    from groundglass.answer.index.store import LocalIndex, list_indexes

    out = []
    for name in list_indexes(settings):
        entry: dict[str, Any] = {"id": name, "object": "index"}
        try:
            index = LocalIndex.open(settings, name)
        except GroundglassError as exc:  # a damaged index is listed with what is wrong
            entry["error"] = str(exc)
        else:
            try:
                stats = index.stats()
            finally:
                index.close()
            entry.update(documents=stats["documents"], chunks=stats["chunks"], updated=stats["updated"])
        out.append(entry)
    return out
