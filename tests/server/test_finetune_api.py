"""DreamBooth through the API of a real `groundglass serve`, driven by the official `openai` client:
upload the toy world's star, fine-tune, stream the events, draw with the new model; a server killed
mid-training resumes the job to the same loss curve; bad input gets a 4xx, never a 500."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from finetune_helpers import TOY_HYPERPARAMETERS, png_claiming, stars_zip, zip_of
from server_helpers import Server, cli, create_key, free_port, ledger_rows, write_config

pytestmark = pytest.mark.slow
PRICES = """
[server.prices.toy-world]
training_steps_per_thousand = 10.0
device_seconds_per_hour = 36.0
images_per_thousand = 40.0
"""


def start_server(home: Path) -> tuple[Server, str]:
    """A server on ``home`` (a new home gets its config and a key of project ``studio`` first)."""
    home.mkdir(parents=True, exist_ok=True)
    key_file = home / "studio.key"
    if not (home / "config.toml").exists():
        write_config(home, PRICES, warm_up=False, finetune_accelerator="cpu")
        key_file.write_text(create_key(home, "studio"))
    return Server(home, free_port(), env={"OMP_NUM_THREADS": "1"}).start(), key_file.read_text()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    server, key = start_server(tmp_path_factory.mktemp("finetune") / "home")
    try:
        yield server, key
    finally:
        server.stop()


def client_for(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0, timeout=60)


def upload_stars(client: openai.OpenAI) -> str:
    f = client.files.create(file=("stars.zip", stars_zip(), "application/zip"), purpose="fine-tune")
    assert f.purpose == "fine-tune" and f.filename == "stars.zip"
    return f.id


LONGER = {"train_steps": 30, "checkpoint_every": 15, "sample_every": 15}  # long enough to learn the star


def method(**overrides: Any) -> dict[str, Any]:
    return {"type": "dreambooth", "dreambooth": {"hyperparameters": {**TOY_HYPERPARAMETERS, **overrides}}}


def sse_events(server: Server, key: str, job_id: str, timeout: float = 240) -> list[dict[str, Any]]:
    """Every event of a job, read from the stream as it happens, until the stream says done."""
    out: list[dict[str, Any]] = []
    with httpx.stream(
        "GET",
        f"{server.base_url}/v1/fine_tuning/jobs/{job_id}/events",
        params={"stream": "true"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        for line in response.iter_lines():
            if line.startswith("data: "):
                if line == "data: [DONE]":
                    return out
                out.append(json.loads(line[6:]))
    raise AssertionError(f"the stream ended without [DONE] after {len(out)} events")


def wait_for(client: openai.OpenAI, job_id: str, statuses: tuple[str, ...], timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job.status}")


def curve(events: list[dict[str, Any]]) -> dict[int, float]:
    return {e["data"]["step"]: e["data"]["loss"] for e in events if e["kind"] == "step"}


def subject_scores(client: openai.OpenAI, model: str) -> dict[str, float]:
    """The toy world's subject fidelity and identity (the share of images the star judge sees as the
    star) of ``model``'s images of the recontextualisation prompts (as in `dreambooth demo`), drawn
    through the API, 4 seeds per prompt."""
    from PIL import Image

    from groundglass.dreambooth.world import metrics
    from groundglass.dreambooth.world.subject import RECONTEXT_PROMPTS, instance_images

    images = []
    for prompt in RECONTEXT_PROMPTS:
        drawn = client.images.generate(
            model=model,
            prompt=prompt,
            n=4,
            size="32x32",
            extra_body={"seed": 100, "steps": 5, "guidance_scale": 4.0},
        )
        assert drawn.data is not None
        images += [
            Image.open(io.BytesIO(base64.b64decode(d.b64_json or ""))).convert("RGB") for d in drawn.data
        ]
    return {
        "subject_fidelity": metrics.subject_fidelity(images, instance_images()),
        "identity": metrics.identity(images),
    }


def test_fine_tune_and_draw_with_the_openai_client(studio: tuple[Server, str]) -> None:
    server, key = studio
    client = client_for(server, key)
    file_id = upload_stars(client)
    job = client.fine_tuning.jobs.create(
        model="toy-world", training_file=file_id, suffix="star", method=method(**LONGER)
    )  # type: ignore[arg-type]
    assert job.status in ("queued", "running") and job.model == "toy-world"

    events = sse_events(server, key, job.id)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "queued" and kinds[-1] == "succeeded", kinds
    assert [e["data"]["phase"] for e in events if e["kind"] == "phase" and "phase" in e["data"]] == [
        "class_images",
        "training",
        "export",
    ]
    assert sorted(curve(events)) == list(range(1, 31))
    assert all(e["type"] == "metrics" for e in events if e["kind"] == "step")
    samples = [e for e in events if e["kind"] == "samples"]
    assert [s["data"]["step"] for s in samples] == [15, 30]
    png = httpx.get(
        server.base_url + samples[0]["data"]["images"][0], headers={"Authorization": f"Bearer {key}"}
    )
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    model_id = done.fine_tuned_model
    assert model_id == f"ft:toy-world:studio:star:{job.id.removeprefix('ftjob-')}"
    assert model_id in [m.id for m in client.models.list()]
    assert client.models.retrieve(model_id).id == model_id
    listed = client.fine_tuning.jobs.list_events(job.id, limit=3)
    assert [e.id for e in listed.data] == [e["id"] for e in reversed(events)][:3] and listed.has_more
    (kept,) = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert kept.step_number == 30 and kept.fine_tuning_job_id == job.id
    assert any(j.id == job.id for j in client.fine_tuning.jobs.list().data)

    from PIL import Image

    drawn = client.images.generate(
        model=model_id,
        prompt="a photo of a sks shape on a grid background",
        n=2,
        size="32x32",
        extra_body={"seed": 5, "steps": 4, "guidance_scale": 4.0},
    )
    assert drawn.data is not None and len(drawn.data) == 2
    images = [Image.open(io.BytesIO(base64.b64decode(d.b64_json or ""))) for d in drawn.data]
    assert [im.size for im in images] == [(32, 32), (32, 32)]
    assert images[1].text["seed"] == "6" and images[0].text["model"] == model_id
    assert "a photo of a sks shape on a grid background" in images[0].text["parameters"]
    again = client.images.generate(
        model=model_id,
        prompt="a photo of a sks shape on a grid background",
        n=1,
        size="32x32",
        response_format="url",
        extra_body={"seed": 5, "steps": 4, "guidance_scale": 4.0},
    )
    assert again.data is not None and again.data[0].url
    fetched = httpx.get(again.data[0].url)
    assert fetched.status_code == 200
    assert Image.open(io.BytesIO(fetched.content)).tobytes() == images[0].tobytes()  # same seed, same image
    base = client.images.generate(
        model="toy-world",
        prompt="a photo of a sks shape on a grid background",
        n=1,
        size="32x32",
        extra_body={"seed": 5, "steps": 4, "guidance_scale": 4.0},
    )
    assert base.data is not None
    assert (
        Image.open(io.BytesIO(base64.b64decode(base.data[0].b64_json or ""))).tobytes() != images[0].tobytes()
    )

    # the personalised model draws the subject: the toy world's subject fidelity beats the base model's
    scores = {name: subject_scores(client, name) for name in ("toy-world", model_id)}
    print(f"through the API: {scores}")
    base_scores, tuned = scores["toy-world"], scores[model_id]
    assert tuned["subject_fidelity"] > base_scores["subject_fidelity"] + 0.03, scores
    assert tuned["identity"] >= base_scores["identity"] + 0.25, scores  # it draws the star itself

    auth = {"Authorization": f"Bearer {key}"}
    export = f"{server.base_url}/v1/fine_tuning/jobs/{job.id}/export"
    zipped = httpx.get(export, params={"format": "diffusers"}, headers=auth, timeout=120)
    assert zipped.status_code == 200 and "diffusers.zip" in zipped.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert "model_index.json" in names and any(
        n.startswith("unet/") and n.endswith(".safetensors") for n in names
    )
    single = httpx.get(export, params={"format": "single-file"}, headers=auth, timeout=120)
    assert single.status_code == 200 and b"model.diffusion_model." in single.content[:200_000]
    no_lora = httpx.get(export, params={"format": "lora"}, headers=auth, timeout=120)
    assert no_lora.status_code == 400 and "no LoRA adapters" in no_lora.json()["error"]["message"]
    assert httpx.get(export, params={"format": "ckpt"}, headers=auth).status_code == 400

    rows = ledger_rows(server.home, request_id=job.id)
    assert len(rows) == 1 and rows[0]["endpoint"] == "/v1/fine_tuning/jobs" and rows[0]["project"] == "studio"
    drawn_rows = ledger_rows(server.home, endpoint="/v1/images/generations")
    assert len(drawn_rows) == 3 + 6
    assert sorted(round(float(r["total_cost"]), 6) for r in drawn_rows) == [0.04, 0.04, 0.08] + [0.16] * 6
    assert sorted(int(r["images"]) for r in drawn_rows) == [1, 1, 2] + [4] * 6
    report = json.loads(cli(server.home, "usage", "report", "--by", "endpoint", "--json").stdout)
    by_endpoint = {r["endpoint"]: r for r in report}
    assert by_endpoint["/v1/fine_tuning/jobs"]["training_steps"] == 30
    assert by_endpoint["/v1/fine_tuning/jobs"]["device_seconds"] > 0
    assert by_endpoint["/v1/images/generations"]["images"] == 4 + 24
    with pytest.raises(openai.BadRequestError, match="already succeeded"):
        client.fine_tuning.jobs.cancel(job.id)
    other = client_for(server, create_key(server.home, "other"))
    with pytest.raises(openai.NotFoundError):
        other.fine_tuning.jobs.retrieve(job.id)
    with pytest.raises(openai.NotFoundError):
        other.images.generate(model=model_id, prompt="a photo of a sks shape", size="32x32")


def test_bad_input_gets_a_4xx_that_says_what_is_wrong(studio: tuple[Server, str]) -> None:
    server, key = studio
    client = client_for(server, key)
    star = (Path(__file__).parents[2] / "src/groundglass/dreambooth/world/subject/star-0.png").read_bytes()
    bad_files = [
        (("evil.zip", zip_of({"../x.png": star}), "application/zip"), "path traversal"),
        (("bomb.zip", zip_of({"big.png": b"\0" * 40_000_000}), "application/zip"), "zip bomb"),
        (("notes.txt", b"hello", "text/plain"), "not an image"),
        (("huge.png", png_claiming(9000, 9000), "image/png"), "9000x9000"),
    ]
    for upload, words in bad_files:
        with pytest.raises(openai.BadRequestError, match=words):
            client.files.create(file=upload, purpose="fine-tune")
    file_id = upload_stars(client)
    bad_jobs: list[tuple[dict[str, Any], str]] = [
        (
            {"model": "toy-world", "training_file": file_id, "method": method(stepz=3)},
            "unknown field method.dreambooth.hyperparameters.stepz",
        ),
        (  # train_steps is 6 (TOY_HYPERPARAMETERS); steps, its old name, says otherwise
            {"model": "toy-world", "training_file": file_id, "method": method(steps=7)},
            r"train_steps \(6\) and method.dreambooth.hyperparameters.steps, its old name \(7\)",
        ),
        (
            {"model": "toy-world", "training_file": file_id, "method": method(learning_rate=-1)},
            "learning_rate",
        ),
        ({"model": "toy-world", "training_file": file_id, "method": {"type": "supervised"}}, "not supported"),
        ({"model": "toy-world", "training_file": "file_nope", "method": method()}, "no file"),
        ({"model": "sd-9000", "training_file": file_id, "method": method()}, "not configured"),
        (
            {"model": "toy-world", "training_file": file_id, "method": method(preset="sdxl_lora")},
            "preset 'sdxl_lora' trains SDXL models, but the base model 'toy-world' is Stable Diffusion 1.x",
        ),
    ]
    for body, words in bad_jobs:
        with pytest.raises((openai.BadRequestError, openai.NotFoundError), match=words):
            client.fine_tuning.jobs.create(**body)
    bad_images: list[tuple[dict[str, Any], str]] = [
        ({"model": "ft:toy-world:studio::nope", "prompt": "x"}, "does not exist"),
        ({"model": "toy-world", "prompt": "x", "size": "33x33"}, "multiple of 8"),
        ({"model": "toy-world", "prompt": "x", "size": "big"}, "WIDTHxHEIGHT"),
        ({"model": "toy-world", "prompt": "x", "n": 50}, "n"),
        ({"model": "toy-world", "prompt": "x", "extra_body": {"steps": 0}}, "steps"),
    ]
    for body, words in bad_images:
        with pytest.raises(
            (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError), match=words
        ):
            client.images.generate(**body)
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-nope")
    assert "Traceback" not in server.tail(100_000)


def test_cancel_stops_a_running_job_and_keeps_its_checkpoint(studio: tuple[Server, str]) -> None:
    server, key = studio
    client = client_for(server, key)
    settings = method(
        train_steps=10_000, checkpoint_every=10_000, sample_every=0, prior_loss_weight=0.0, class_prompt=None
    )
    job = client.fine_tuning.jobs.create(
        model="toy-world", training_file=upload_stars(client), method=settings
    )
    deadline = time.monotonic() + 240
    while not any(e.type == "metrics" for e in client.fine_tuning.jobs.list_events(job.id, limit=5).data):
        assert time.monotonic() < deadline, "no step in time"
        time.sleep(0.2)
    assert client.fine_tuning.jobs.cancel(job.id).status == "running"  # stops at its next step
    done = wait_for(client, job.id, ("succeeded", "failed", "cancelled"))
    assert done.status == "cancelled" and done.fine_tuned_model is None
    (kept,) = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert 1 <= kept.step_number < 10_000 and kept.step_number == done.trained_steps  # type: ignore[attr-defined]
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=3).data]
    assert messages[0] == f"Job cancelled at step {kept.step_number}; its last checkpoint is kept"
    with pytest.raises(openai.BadRequestError, match="has not succeeded"):
        client.with_options(max_retries=0).get(f"/fine_tuning/jobs/{job.id}/export", cast_to=object)


def test_a_killed_server_resumes_the_job_to_the_same_loss_curve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server, key = start_server(home)
    client = client_for(server, key)
    file_id = upload_stars(client)
    settings = method(train_steps=12, checkpoint_every=3, sample_every=0)
    killed = client.fine_tuning.jobs.create(model="toy-world", training_file=file_id, method=settings)
    straight = client.fine_tuning.jobs.create(model="toy-world", training_file=file_id, method=settings)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # past the first checkpoint (step 3)
            steps = [
                e.data.get("step", 0)
                for e in client.fine_tuning.jobs.list_events(killed.id, limit=5).data
                if e.type == "metrics"
            ]
            if steps and max(steps) >= 4:
                break
            time.sleep(0.05)
        server.kill()
        server, _ = start_server(home)
        client = client_for(server, key)
        resumed = wait_for(client, killed.id, ("succeeded", "failed", "cancelled"))
        assert resumed.status == "succeeded", resumed.error
        other = wait_for(client, straight.id, ("succeeded", "failed", "cancelled"))
        assert other.status == "succeeded", other.error
        events = list(reversed(client.fine_tuning.jobs.list_events(killed.id, limit=1000).data))
        messages = [e.message for e in events]
        resumes = [m for m in messages if m.startswith("Training resumed at step")]
        assert len(resumes) == 1 and resumes[0].split()[4] in ("3", "6", "9"), messages
        curve_killed = {e.data["step"]: e.data["loss"] for e in events if e.type == "metrics"}
        reference = list(reversed(client.fine_tuning.jobs.list_events(straight.id, limit=1000).data))
        curve_straight = {e.data["step"]: e.data["loss"] for e in reference if e.type == "metrics"}
        assert sorted(curve_killed) == list(range(1, 13))
        assert curve_killed == curve_straight  # every step's loss, bit for bit, each step once
        (row,) = ledger_rows(home, request_id=killed.id)
        assert resumed.trained_steps == 12  # type: ignore[attr-defined]
        assert row["total_cost"] >= 12 * 10.0 / 1000
    finally:
        server.stop()
