"""Threads of the API (the web page keeps its conversations here; any client may):

    GET    /v1/threads                      the project's threads, most recent first
    POST   /v1/threads                      start one: {"title": "..."}
    GET    /v1/threads/{id}                 one thread with its turns
    DELETE /v1/threads/{id}
    POST   /v1/threads/{id}/turns           add a turn: {"question", "answer", "details": {...}}
    POST   /v1/threads/{id}/share           a read-only link: {"share_id", "url"}
    DELETE /v1/threads/{id}/share           the link stops working
    GET    /v1/shared/{share_id}            a shared thread, for any valid key

A thread belongs to the calling key's project (:mod:`groundglass.server.thread_store` does the work).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from groundglass.server.auth import Principal
from groundglass.server.state import caller, state
from groundglass.server.thread_store import ThreadStore

router = APIRouter(tags=["threads"])


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field("", max_length=10_000)


class TurnCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    question: str = Field(max_length=200_000)
    answer: str = Field(max_length=1_000_000)
    details: dict[str, Any] = Field(default_factory=dict)


def _store(request: Request) -> ThreadStore:
    return ThreadStore(state(request).db)


@router.get("/v1/threads", summary="The project's threads")
async def list_threads(
    request: Request, who: Principal = Depends(caller), limit: int = Query(50, ge=1, le=500)
) -> dict[str, Any]:
    data = await run_in_threadpool(_store(request).list, who.project, limit)
    return {"object": "list", "data": data}


@router.post("/v1/threads", summary="Start a thread", status_code=201)
async def create_thread(body: ThreadCreate, request: Request, who: Principal = Depends(caller)) -> Any:
    return await run_in_threadpool(_store(request).create, who.project, who.key_id, body.title)


@router.get("/v1/threads/{thread_id}", summary="One thread with its turns")
async def get_thread(thread_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    return await run_in_threadpool(_store(request).get, who.project, thread_id)


@router.delete("/v1/threads/{thread_id}", summary="Delete a thread")
async def delete_thread(thread_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    await run_in_threadpool(_store(request).delete, who.project, thread_id)
    return {"id": thread_id, "object": "thread", "deleted": True}


@router.post("/v1/threads/{thread_id}/turns", summary="Add a question and its answer", status_code=201)
async def add_turn(
    thread_id: str, body: TurnCreate, request: Request, who: Principal = Depends(caller)
) -> Any:
    return await run_in_threadpool(
        _store(request).add_turn, who.project, thread_id, body.question, body.answer, body.details
    )


@router.post("/v1/threads/{thread_id}/share", summary="A read-only link to the thread")
async def share_thread(thread_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    share_id = await run_in_threadpool(_store(request).share, who.project, thread_id)
    return JSONResponse({"id": thread_id, "share_id": share_id, "url": f"/share/{share_id}"})


@router.delete("/v1/threads/{thread_id}/share", summary="Stop sharing the thread")
async def unshare_thread(thread_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    await run_in_threadpool(_store(request).unshare, who.project, thread_id)
    return {"id": thread_id, "shared": False}


@router.get("/v1/shared/{share_id}", summary="A shared thread (read-only)")
async def shared_thread(share_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    return await run_in_threadpool(_store(request).shared, share_id)
