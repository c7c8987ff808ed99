"""Routes for async requests (Perplexity), and files and batches (OpenAI's Batch API).

Perplexity::

    POST /async/chat/completions          {"request": {...chat request...}, "idempotency_key": "..."}
    GET  /async/chat/completions          -> {"requests": [summary, ...], "next_token": ...}
    GET  /async/chat/completions/{id}     -> {id, model, status, created_at, ..., "response": {...}}

and the same three under ``/v1/async/sonar``, Perplexity's newer path for them (list pages: ``limit``
and ``next_token``, the last id of the page before).

OpenAI::

    POST /v1/files (multipart: file, purpose=batch)    GET /v1/files[/{id}[/content]]   DELETE /v1/files/{id}
    POST /v1/batches {"input_file_id", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    GET  /v1/batches[/{id}]               POST /v1/batches/{id}/cancel

Jobs and files belong to the caller's project (admin keys and the open mode see every project).
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from groundglass.server.auth import Principal
from groundglass.server.errors import APIError
from groundglass.server.files import file_public
from groundglass.server.schemas import AsyncChatRequest, BatchCreate
from groundglass.server.state import ServerState, caller, state

router = APIRouter()


def _ts(value: float | None) -> int | None:
    return int(value) if value is not None else None


# --- Perplexity async ------------------------------------------------------------------------------


def _async_summary(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": job["id"],
        "model": job["model"],
        "status": job["status"],
        "created_at": int(job["created_at"]),
        "started_at": _ts(job["started_at"]),
        "completed_at": _ts(job["completed_at"]),
        "failed_at": _ts(job["failed_at"]),
    }


def _async_full(job: dict[str, Any]) -> dict[str, Any]:
    out = _async_summary(job)
    out["error_message"] = job["error_message"]
    out["response"] = job["response"] if job["status"] == "COMPLETED" else None
    return out


@router.post("/async/chat/completions", tags=["async"], summary="Queue a chat completion")
@router.post("/v1/async/sonar", tags=["async"], summary="Queue a chat completion (Perplexity's newer path)")
async def create_async(body: AsyncChatRequest, request: Request, who: Principal = Depends(caller)) -> Any:
    st = state(request)
    await _admit(st, who)
    st.answerer.plan(body.request)  # unknown model or unusable messages: refuse now, not later
    raw = body.request.model_dump(mode="json", by_alias=True, exclude_unset=True)
    job = await run_in_threadpool(st.jobs.create_async, who, raw, body.idempotency_key)
    _wake(st)
    return _async_full(job)


@router.get("/async/chat/completions", tags=["async"], summary="List async requests")
@router.get("/v1/async/sonar", tags=["async"], summary="List async requests (Perplexity's newer path)")
async def list_async(
    request: Request,
    who: Principal = Depends(caller),
    limit: int = Query(20, ge=1, le=100),
    next_token: str | None = None,
) -> Any:
    st = state(request)
    jobs = await run_in_threadpool(st.jobs.list_jobs, who, "async", limit + 1, next_token)
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {"requests": [_async_summary(j) for j in jobs], "next_token": jobs[-1]["id"] if more else None}


@router.get("/async/chat/completions/{request_id}", tags=["async"], summary="One async request")
@router.get("/v1/async/sonar/{request_id}", tags=["async"], summary="One async request (newer path)")
async def get_async(request_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    st = state(request)
    job = await run_in_threadpool(st.jobs.get_job, who, request_id, "async")
    if job is None:
        raise APIError(404, f"no async request {request_id!r}", code="not_found", param="request_id")
    return _async_full(job)


# --- OpenAI files ----------------------------------------------------------------------------------


async def upload_batch_file(request: Request, file: UploadFile, purpose: str, who: Principal) -> Any:
    """A JSONL batch input upload. The one ``POST /v1/files`` route is fine-tuning's (it takes several
    photos too) and hands every other purpose here, so that the path has one operation."""
    st = state(request)
    if purpose != "batch":
        raise APIError(
            400,
            f"purpose {purpose!r} is not supported here; use 'batch' (a JSONL batch input) or "
            "'fine-tune' (photos for a fine-tuning job)",
            code="invalid_purpose",
            param="purpose",
        )
    content = await file.read()
    if not content:
        raise APIError(400, "the uploaded file is empty", code="empty_file", param="file")
    await _admit(st, who)
    return await run_in_threadpool(
        st.files.create_file, who.project, "batch", file.filename or "upload.jsonl", content
    )


@router.get("/v1/files", tags=["files"], summary="List files")
async def list_files(request: Request, who: Principal = Depends(caller), purpose: str | None = None) -> Any:
    st = state(request)
    data = await run_in_threadpool(st.files.list_files, who, purpose)
    return {"object": "list", "data": data, "has_more": False}


@router.get("/v1/files/{file_id}", tags=["files"], summary="One file's metadata")
async def get_file(file_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    f = await run_in_threadpool(state(request).files.get_file, who, file_id)
    if f is None:
        raise APIError(404, f"no file {file_id!r}", code="file_not_found", param="file_id")
    return file_public(f)


@router.get(
    "/v1/files/{file_id}/content", tags=["files"], summary="A file's bytes (batch output/error JSONL)"
)
async def file_content(file_id: str, request: Request, who: Principal = Depends(caller)) -> Response:
    f = await run_in_threadpool(state(request).files.get_file, who, file_id, content=True)
    if f is None:
        raise APIError(404, f"no file {file_id!r}", code="file_not_found", param="file_id")
    return Response(f["content"], media_type=content_type(f["filename"], f["content"]))


def content_type(filename: str, content: bytes) -> str:
    """A stored file's media type: a zip (fine-tuning photos) by its bytes, JSONL (batch input, output
    and errors) by its name, else what the name says, else bytes."""
    if content.startswith(b"PK\x03\x04"):
        return "application/zip"
    if filename.endswith(".jsonl"):
        return "application/jsonl"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


@router.delete("/v1/files/{file_id}", tags=["files"], summary="Delete a file")
async def delete_file(file_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    deleted = await run_in_threadpool(state(request).files.delete_file, who, file_id)
    if not deleted:
        raise APIError(404, f"no file {file_id!r}", code="file_not_found", param="file_id")
    return {"id": file_id, "object": "file", "deleted": True}


# --- OpenAI batches --------------------------------------------------------------------------------


def batch_object(job: dict[str, Any]) -> dict[str, Any]:
    c = job["counts"]
    return {
        "id": job["id"],
        "object": "batch",
        "endpoint": job["endpoint"],
        "errors": None,
        "input_file_id": job["input_file_id"],
        "completion_window": "24h",  # the only value OpenAI accepts; server.batch_completion_window_s rules
        "status": job["status"],
        "output_file_id": job["output_file_id"],
        "error_file_id": job["error_file_id"],
        "created_at": int(job["created_at"]),
        "in_progress_at": _ts(job["started_at"] or job["created_at"]),
        "expires_at": int(job["expires_at"] or job["created_at"] + 86_400),
        "finalizing_at": _ts(job["finalizing_at"]),
        "completed_at": _ts(job["completed_at"]),
        "failed_at": _ts(job["failed_at"]),
        "expired_at": _ts(job["expired_at"]),
        "cancelling_at": _ts(job["cancelling_at"]),
        "cancelled_at": _ts(job["cancelled_at"]),
        # expired lines are in the error file, so they count as failed (completed + failed == total)
        "request_counts": {
            "total": c["total"],
            "completed": c["completed"],
            "failed": c["failed"] + c["expired"],
        },
        "metadata": json.loads(job["metadata_json"]) if job["metadata_json"] else None,
        "usage": {
            "input_tokens": job["tokens"]["input"],
            "output_tokens": job["tokens"]["output"],
            "total_tokens": job["tokens"]["input"] + job["tokens"]["output"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


@router.post("/v1/batches", tags=["batches"], summary="Create a batch from an uploaded JSONL file")
async def create_batch(body: BatchCreate, request: Request, who: Principal = Depends(caller)) -> Any:
    st = state(request)
    await _admit(st, who)
    job = await run_in_threadpool(
        st.jobs.create_batch,
        who,
        body.input_file_id,
        body.endpoint,
        body.metadata,
        st.settings.server.max_batch_lines,
        st.settings.server.batch_completion_window_s,
    )
    _wake(st)
    return batch_object(job)


@router.get("/v1/batches", tags=["batches"], summary="List batches")
async def list_batches(
    request: Request,
    who: Principal = Depends(caller),
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
) -> Any:
    jobs = await run_in_threadpool(state(request).jobs.list_jobs, who, "batch", limit + 1, after)
    more = len(jobs) > limit
    data = [batch_object(j) for j in jobs[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


@router.get("/v1/batches/{batch_id}", tags=["batches"], summary="One batch")
async def get_batch(batch_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    job = await run_in_threadpool(state(request).jobs.get_job, who, batch_id, "batch")
    if job is None:
        raise APIError(404, f"no batch {batch_id!r}", code="batch_not_found", param="batch_id")
    return batch_object(job)


@router.post("/v1/batches/{batch_id}/cancel", tags=["batches"], summary="Cancel a batch")
async def cancel_batch(batch_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    job = await run_in_threadpool(state(request).jobs.cancel_batch, who, batch_id)
    if job is None:
        raise APIError(404, f"no batch {batch_id!r}", code="batch_not_found", param="batch_id")
    return batch_object(job)


async def _admit(st: ServerState, who: Principal) -> None:
    try:
        await st.limits.admit(who)
    except APIError as exc:
        if exc.status == 429:
            st.metrics.rate_limited.inc()
        raise


def _wake(st: ServerState) -> None:
    if st.worker is not None:
        st.worker.wake()
