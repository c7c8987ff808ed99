"""Routes of DreamBooth as a service, OpenAI-shaped so the official ``openai`` client works unchanged::

    POST /v1/files (purpose=fine-tune: a zip of photos, or image files)     (wired in the files route)
    POST /v1/fine_tuning/jobs    {model, training_file, method: {type: dreambooth, dreambooth:
                                  {hyperparameters: {...}}}, suffix, seed, metadata}
    GET  /v1/fine_tuning/jobs[?after&limit]     GET /v1/fine_tuning/jobs/{id}
    POST /v1/fine_tuning/jobs/{id}/cancel
    GET  /v1/fine_tuning/jobs/{id}/events[?after&limit]   (?stream=true: server-sent events until the end)
    GET  /v1/fine_tuning/jobs/{id}/checkpoints
    GET  /v1/fine_tuning/jobs/{id}/samples/{step}/{file}   the sample PNGs the events point to
    GET  /v1/fine_tuning/jobs/{id}/export?format=diffusers|single-file|lora|lora-kohya|lora-comfyui
    POST /v1/images/generations  {model, prompt, n, size, response_format, seed, steps, guidance_scale,
                                  negative_prompt, scheduler}
    GET  /v1/images/files/{name}                           response_format=url images
    GET  /v1/models (image models added), /v1/models/{id}

The routes parse, call :class:`~groundglass.server.finetune.service.FineTuning` (kept in
``app.state.finetune``) off the event loop, and shape the reply.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from groundglass.errors import GroundglassError
from groundglass.server.auth import Principal
from groundglass.server.errors import APIError
from groundglass.server.finetune.service import FILE_PURPOSE, FineTuning
from groundglass.server.finetune.store import TERMINAL, event_public, event_seq
from groundglass.server.state import caller

router = APIRouter()
STREAM_POLL_S = 0.25


def service(request: Request) -> FineTuning:
    return request.app.state.finetune  # type: ignore[no-any-return]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, max_length=200)
    training_file: str = Field(..., min_length=1, max_length=100)
    # A free-form object checked by the service (method_hyperparameters, then the Hyperparameters class)
    # so its errors name the field; the description and example are what OpenAPI shows of it.
    method: dict[str, Any] | None = Field(
        None,
        description="{type: dreambooth, dreambooth: {hyperparameters: {...}}}: DreamBooth's settings "
        "(groundglass.dreambooth.job.Hyperparameters), e.g. train_steps (optimizer steps; its old name "
        "steps is read for one release), sample_steps (denoising steps per sample image)",
        examples=[
            {
                "type": "dreambooth",
                "dreambooth": {
                    "hyperparameters": {
                        "preset": "lora",
                        "instance_prompt": "a photo of sks dog",
                        "class_prompt": "a photo of a dog",
                        "train_steps": 400,
                    }
                },
            }
        ],
    )
    hyperparameters: dict[str, Any] | None = None  # OpenAI's older top-level field: refused below
    suffix: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9._-]*$")
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    metadata: dict[str, str] | None = None
    validation_file: str | None = None
    integrations: list[Any] | None = None


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1, max_length=2000)
    model: str = Field("toy-world", min_length=1, max_length=400)
    n: int = Field(1, ge=1, le=10)
    size: str | None = None
    response_format: Literal["b64_json", "url"] = "b64_json"
    seed: int | None = Field(None, ge=0, le=2**31 - 11)
    steps: int = Field(25, ge=1, le=500)
    guidance_scale: float = Field(7.5, ge=0, le=50)
    negative_prompt: str | None = Field(None, max_length=2000)
    scheduler: Literal["ddim", "dpm++", "euler"] = "ddim"
    user: str | None = None
    quality: str | None = None
    style: str | None = None


def job_object(job: dict[str, Any]) -> dict[str, Any]:
    """A job as OpenAI's ``fine_tuning.job``."""
    hp = job["hyperparameters"]
    return {
        "id": job["id"],
        "object": "fine_tuning.job",
        "created_at": int(job["created_at"]),
        "finished_at": int(job["finished_at"]) if job["finished_at"] else None,
        "model": job["model"],
        "fine_tuned_model": job["fine_tuned_model"],
        "organization_id": job["project"],
        "status": job["status"],
        "training_file": job["training_file"],
        "validation_file": None,
        "result_files": [],
        "trained_tokens": None,
        "trained_steps": job["trained_steps"],
        "seed": hp.get("seed", 0),
        "error": job["error"],
        "estimated_finish": int(job["estimated_finish"])
        if job["estimated_finish"] and job["status"] == "running"
        else None,
        "hyperparameters": {
            "batch_size": hp.get("batch_size"),
            "n_epochs": None,
            "learning_rate_multiplier": None,
        },
        "method": {"type": "dreambooth", "dreambooth": {"hyperparameters": hp}},
        "metadata": job["metadata"],
        "user_provided_suffix": job["suffix"],
        "integrations": [],
    }


async def photos_upload(request: Request, who: Principal, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """``POST /v1/files`` with ``purpose=fine-tune``: check every photo, store them as one file."""
    ft = service(request)
    name, bundled, count = await run_in_threadpool(ft.check_upload, files)
    stored = await run_in_threadpool(ft.store_photos, who, name, bundled)
    return {**stored, "status": "processed", "status_details": f"{count} photos"}


@router.post("/v1/fine_tuning/jobs", tags=["fine-tuning"], summary="Create a DreamBooth fine-tuning job")
async def create_job(body: JobCreate, request: Request, who: Principal = Depends(caller)) -> Any:
    ft = service(request)
    for name in ("hyperparameters", "validation_file", "integrations"):
        if getattr(body, name):
            raise APIError(
                400,
                f"{name} is not supported; DreamBooth's settings go in method.dreambooth.hyperparameters",
                code="unsupported_parameter",
                param=name,
            )
    await request.app.state.gg.limits.admit(who)
    f = await run_in_threadpool(ft.get_file, who, body.training_file)
    job = await run_in_threadpool(
        lambda: ft.create_job(
            who,
            model=body.model,
            training_file=f,
            training_file_id=body.training_file,
            method=body.method,
            suffix=body.suffix,
            seed=body.seed,
            metadata=body.metadata,
        )
    )
    return job_object(job)


@router.get("/v1/fine_tuning/jobs", tags=["fine-tuning"], summary="List fine-tuning jobs")
async def list_jobs(
    request: Request,
    who: Principal = Depends(caller),
    after: str | None = None,
    limit: int = Query(20, ge=1, le=100),
) -> Any:
    jobs = await run_in_threadpool(service(request).store.list_jobs, who, limit=limit + 1, after=after)
    return {"object": "list", "data": [job_object(j) for j in jobs[:limit]], "has_more": len(jobs) > limit}


async def _job(request: Request, who: Principal, job_id: str) -> dict[str, Any]:
    job = await run_in_threadpool(service(request).store.get_job, who, job_id)
    if job is None:
        raise APIError(
            404, f"no fine-tuning job {job_id!r}", code="job_not_found", param="fine_tuning_job_id"
        )
    return job


@router.get("/v1/fine_tuning/jobs/{job_id}", tags=["fine-tuning"], summary="One fine-tuning job")
async def get_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    return job_object(await _job(request, who, job_id))


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel", tags=["fine-tuning"], summary="Cancel a job")
async def cancel_job(job_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    job = await _job(request, who, job_id)
    if job["status"] in TERMINAL:
        raise APIError(
            400, f"job {job_id} has already {job['status']}", code="job_finished", param="fine_tuning_job_id"
        )
    job = await run_in_threadpool(service(request).cancel, who, job_id)
    assert job is not None
    return job_object(job)


@router.get("/v1/fine_tuning/jobs/{job_id}/events", tags=["fine-tuning"], summary="A job's events")
async def list_events(
    job_id: str,
    request: Request,
    who: Principal = Depends(caller),
    after: str | None = None,
    limit: int = Query(20, ge=1, le=10_000),
    stream: bool = False,
) -> Any:
    await _job(request, who, job_id)
    store = service(request).store
    if stream:
        start = event_seq(request.headers.get("last-event-id")) or 0
        return StreamingResponse(
            _event_stream(request, job_id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    rows = await run_in_threadpool(
        lambda: store.list_events(job_id, before_seq=event_seq(after), limit=limit + 1)
    )
    return {"object": "list", "data": [event_public(r) for r in rows[:limit]], "has_more": len(rows) > limit}


async def _event_stream(request: Request, job_id: str, seq: int) -> AsyncIterator[bytes]:
    """Every event in order (from after ``seq``) as it is recorded; ends once the job has ended."""
    store = service(request).store
    ended = False
    while True:
        rows = await run_in_threadpool(store.list_events, job_id, after_seq=seq, limit=500, ascending=True)
        for row in rows:
            seq = row["id"]
            event = event_public(row)
            yield f"id: {event['id']}\nevent: {row['kind']}\ndata: {json.dumps(event)}\n\n".encode()
        if rows:
            continue
        if ended:
            yield b"event: done\ndata: [DONE]\n\n"
            return
        job = await run_in_threadpool(store.get_job, None, job_id)
        if job is None or job["status"] in TERMINAL:
            # The job's last events (its export phase, its end) may have been recorded between the read
            # above and this check: read once more, so a stream never ends without them.
            ended = True
            continue
        if await request.is_disconnected():
            return
        await asyncio.sleep(STREAM_POLL_S)


@router.get("/v1/fine_tuning/jobs/{job_id}/checkpoints", tags=["fine-tuning"], summary="Kept checkpoints")
async def list_checkpoints(job_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    job = await _job(request, who, job_id)
    data = await run_in_threadpool(service(request).checkpoints, job)
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


@router.get(
    "/v1/fine_tuning/jobs/{job_id}/export",
    tags=["fine-tuning"],
    summary="Download a succeeded job's model: diffusers (zip), single-file, or a LoRA .safetensors "
    "(lora: diffusers/PEFT; lora-kohya: A1111/ComfyUI; lora-comfyui)",
)
async def export_model(
    job_id: str, request: Request, who: Principal = Depends(caller), format: str = Query("diffusers")
) -> Any:
    job = await _job(request, who, job_id)
    path, name = await run_in_threadpool(service(request).export, who, job, format)
    media = "application/zip" if name.endswith(".zip") else "application/octet-stream"
    return FileResponse(path, media_type=media, filename=name)


@router.get(
    "/v1/fine_tuning/jobs/{job_id}/samples/{step}/{name}",
    tags=["fine-tuning"],
    summary="A sample image drawn during training",
)
async def sample_image(
    job_id: str, step: str, name: str, request: Request, who: Principal = Depends(caller)
) -> Any:
    await _job(request, who, job_id)
    folder = service(request).job_dir(job_id) / "run" / "samples"
    path = folder / step / name
    if not (
        step.startswith("step_")
        and name.endswith(".png")
        and "/" not in step + name
        and ".." not in step + name
        and path.is_file()
    ):
        raise APIError(404, f"no sample {step}/{name}", code="not_found")
    return FileResponse(path, media_type="image/png")


@router.post("/v1/images/generations", tags=["images"], summary="Draw images with a base or fine-tuned model")
async def generate_images(body: ImageRequest, request: Request, who: Principal = Depends(caller)) -> Any:
    ft = service(request)
    started = time.perf_counter()
    await request.app.state.gg.limits.admit(who)
    base, source = await run_in_threadpool(ft.model_source, who, body.model)
    try:
        drawn = await run_in_threadpool(
            lambda: ft.images.draw(
                model=body.model,
                source=source,
                prompt=body.prompt,
                n=body.n,
                size=body.size,
                seed=body.seed,
                steps=body.steps,
                guidance_scale=body.guidance_scale,
                negative_prompt=body.negative_prompt,
                scheduler=body.scheduler,
            )
        )
    except GroundglassError:
        raise
    data = []
    for image in drawn:
        if body.response_format == "url":
            name = await run_in_threadpool(ft.images.keep, image.png)
            url = str(request.base_url).rstrip("/") + f"/v1/images/files/{name}"
            data.append({"url": url, "seed": image.seed, "revised_prompt": None})
        else:
            data.append(
                {"b64_json": base64.b64encode(image.png).decode(), "seed": image.seed, "revised_prompt": None}
            )
    from groundglass.server.usage import new_request_id

    await run_in_threadpool(
        lambda: ft.record_images(
            who, model=body.model, base=base, count=len(drawn), started=started, request_id=new_request_id()
        )
    )
    return {
        "created": int(time.time()),
        "data": data,
        "output_format": "png",
        "usage": {"images": len(drawn)},
    }


@router.get("/v1/images/files/{name}", tags=["images"], summary="An image drawn with response_format=url")
async def image_file(name: str, request: Request) -> Any:
    path = service(request).images.stored(name)
    if path is None:
        raise APIError(404, f"no image {name!r}", code="not_found")
    return FileResponse(path, media_type="image/png")


# --- models: the answer presets, then the image models -------------------------------------------------


@router.get("/v1/models", summary="Models this server answers and draws with")
@router.get("/models", include_in_schema=False)
async def list_models(request: Request, who: Principal = Depends(caller)) -> Any:
    from groundglass.server import chat

    out = await chat.list_models(request, who)
    out["data"] += await run_in_threadpool(service(request).models, who)
    return out


@router.get("/v1/models/{model:path}", summary="One model")
async def get_model(model: str, request: Request, who: Principal = Depends(caller)) -> Any:
    from groundglass.server import chat

    images = await run_in_threadpool(service(request).models, who)
    found = next((m for m in images if m["id"] == model), None)
    if found is not None:
        return found
    return await chat.get_model(model, request, who)


# --- files: photos for fine-tuning here, everything else to the batch files route ----------------------


@router.post(
    "/v1/files", tags=["files"], summary="Upload a file: photos to fine-tune on, or a JSONL batch input"
)
async def upload_file(
    request: Request,
    file: list[UploadFile] = File(..., description="purpose=fine-tune: a zip of photos or image files"),
    purpose: str = Form(...),
    who: Principal = Depends(caller),
) -> Any:
    if purpose != FILE_PURPOSE:
        from groundglass.server import jobs_api

        if len(file) != 1:
            raise APIError(400, "a batch input is one file", code="invalid_file", param="file")
        return await jobs_api.upload_batch_file(request, file[0], purpose, who)
    await request.app.state.gg.limits.admit(who)
    files = [(f.filename or f"photo-{i}", await f.read()) for i, f in enumerate(file)]
    return await photos_upload(request, who, files)
