"""Async requests (Perplexity SDK) and batches (openai SDK): persisted, bounded, resumable after a crash."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai
import perplexity
import pytest
from perplexity import Perplexity
from server_helpers import Api, Server, create_key, free_port, ledger_rows, make_home

QUESTIONS = [
    "When was the Eiffel Tower completed?",
    "Who wrote the first computer program?",
    "Where is Mount Etna?",
    "Who created Python?",
    "When did Apollo 11 land on the Moon?",
    "What is Rust focused on?",
]


def batch_file(questions: list[str], **extra: Any) -> bytes:
    lines = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "sonar",
                "max_tokens": 12,
                "messages": [{"role": "user", "content": q}],
                **extra,
            },
        }
        for i, q in enumerate(questions)
    ]
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def wait_for(fn: Any, done: Any, timeout: float = 240, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last value: {value}")
        time.sleep(every)


def line_attempts(home: Path, batch_id: str) -> list[int]:
    from sqlalchemy import select

    from groundglass.config import load_settings
    from groundglass.server import db

    engine = db.get_engine(load_settings(home / "config.toml", home=str(home)))
    with engine.connect() as conn:
        q = select(db.job_items.c.attempts).where(db.job_items.c.job_id == batch_id)
        return [r.attempts for r in conn.execute(q)]


def jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_async_requests_with_the_perplexity_sdk(api: Api) -> None:
    client = Perplexity(base_url=api.base_url, api_key=api.key, max_retries=0, timeout=60)
    request = {
        "model": "sonar",
        "max_tokens": 12,
        "messages": [{"role": "user", "content": "Where is Mount Etna?"}],
    }
    job = client.async_.chat.completions.create(request=request, idempotency_key="etna-1")
    assert job.status in ("CREATED", "IN_PROGRESS", "COMPLETED") and job.model == "sonar"
    again = client.async_.chat.completions.create(request=request, idempotency_key="etna-1")
    assert again.id == job.id  # the same idempotency key does not queue the work twice

    done = wait_for(lambda: client.async_.chat.completions.get(job.id), lambda j: j.status == "COMPLETED")
    assert done.completed_at and done.started_at and done.started_at >= done.created_at
    assert done.response.choices[0].message.content
    assert "https://www.example.net/etna" in done.response.citations
    assert done.response.usage.cost.total_cost > 0
    listed = client.async_.chat.completions.list()
    assert job.id in {r.id for r in listed.requests}
    assert len(ledger_rows(api.home, request_id=done.response.id)) == 1

    with pytest.raises(perplexity.NotFoundError):
        client.async_.chat.completions.get("async_does_not_exist")
    with pytest.raises(perplexity.NotFoundError):  # refused at once, not queued to fail later
        client.async_.chat.completions.create(request={**request, "model": "nope"})
    other = create_key(api.home, "other-project")  # another project cannot see this job
    r = httpx.get(
        f"{api.base_url}/async/chat/completions/{job.id}", headers={"Authorization": f"Bearer {other}"}
    )
    assert r.status_code == 404


def test_openai_batch_lifecycle(api: Api) -> None:
    client = openai.OpenAI(base_url=api.base_url + "/v1", api_key=api.key, max_retries=0, timeout=60)
    content = (
        batch_file(QUESTIONS[:2])
        + json.dumps(
            {
                "custom_id": "bad",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
            }
        ).encode()
        + b"\n"
    )
    f = client.files.create(file=("questions.jsonl", content), purpose="batch")
    assert f.bytes == len(content) and f.purpose == "batch"
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"team": "qa"}
    )
    assert batch.status == "in_progress" and batch.request_counts.total == 3
    batch = wait_for(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
    assert batch.metadata == {"team": "qa"} and batch.completed_at
    out = jsonl(client.files.content(batch.output_file_id).content)
    assert [x["custom_id"] for x in out] == ["q0", "q1"]
    assert all(x["response"]["status_code"] == 200 and x["response"]["body"]["choices"] for x in out)
    errors = jsonl(client.files.content(batch.error_file_id).content)
    assert [x["custom_id"] for x in errors] == ["bad"]
    assert errors[0]["response"]["status_code"] == 404 and errors[0]["error"]["code"] == "model_not_found"
    assert batch.id in {b.id for b in client.batches.list()}
    billed = {x["request_id"] for x in ledger_rows(api.home, project="acme")}
    assert {x["response"]["request_id"] for x in out + errors} <= billed

    with pytest.raises(openai.BadRequestError) as info:
        bad = client.files.create(
            file=("bad.jsonl", b'{"custom_id": "a", "method": "POST"\n'), purpose="batch"
        )
        client.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "line 1" in info.value.message
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("x.jsonl", b"{}\n"), purpose="fine-tune")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")


def test_batch_cancel(api: Api) -> None:
    client = openai.OpenAI(base_url=api.base_url + "/v1", api_key=api.key, max_retries=0, timeout=60)
    f = client.files.create(file=("six.jsonl", batch_file(QUESTIONS)), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled")
    final = wait_for(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "cancelled")
    assert final.cancelled_at and final.request_counts.completed < 6  # lines not started never run


def test_server_killed_mid_batch_resumes_without_losing_or_repeating(
    index_home: Path, tmp_path: Path
) -> None:
    home = make_home(index_home, tmp_path / "home")
    key = create_key(home, "batchy")
    server = Server(home, free_port()).start()
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=60)
    try:
        f = client.files.create(file=("six.jsonl", batch_file(QUESTIONS)), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        wait_for(
            lambda: client.batches.retrieve(batch.id), lambda b: b.request_counts.completed >= 2, every=0.1
        )
        server.kill()  # SIGKILL: no cleanup, a line is likely half-way through the model
        done_before = len(ledger_rows(home, project="batchy"))
        assert 2 <= done_before < 6

        server = Server(home, server.port).start()  # same database; the lease of the dead worker runs out
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=60)
        final = wait_for(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "completed")
        assert (final.request_counts.completed, final.request_counts.failed) == (6, 0)
        out = jsonl(client.files.content(final.output_file_id).content)
        assert sorted(x["custom_id"] for x in out) == [f"q{i}" for i in range(6)]  # nothing lost
        rows = ledger_rows(home, project="batchy")
        assert len(rows) == 6  # nothing billed twice: each line's result and ledger row commit together
        assert {x["request_id"] for x in rows} == {x["response"]["request_id"] for x in out}
        assert Counter(x["status"] for x in rows) == {200: 6}
        attempts = Counter(line_attempts(home, batch.id))
        assert set(attempts) <= {1, 2} and attempts[2] <= 1  # only the line in flight at the kill ran again
    finally:
        server.stop()
