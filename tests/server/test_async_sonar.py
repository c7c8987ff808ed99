"""Perplexity's newer async paths, ``/v1/async/sonar``: create, get, and list pages by ``next_token``,
against a real server; the older ``/async/chat/completions`` paths see the same requests."""

from __future__ import annotations

import time
from typing import Any

import httpx
from server_helpers import Api

ASYNC = "/v1/async/sonar"


def wait_done(api: Api, request_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{api.base_url}{ASYNC}/{request_id}", headers=api.headers(), timeout=30)
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def test_create_get_and_page_through_async_sonar(api: Api) -> None:
    ids = []
    for question in ("Where is Mount Etna?", "Who created Python?", "When did Apollo 11 land?"):
        request = {"model": "sonar", "max_tokens": 8, "messages": [{"role": "user", "content": question}]}
        r = httpx.post(f"{api.base_url}{ASYNC}", json={"request": request}, headers=api.headers(), timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("CREATED", "IN_PROGRESS", "COMPLETED") and r.json()["model"] == "sonar"
        ids.append(r.json()["id"])
    done = wait_done(api, ids[0])
    assert done["status"] == "COMPLETED" and done["response"]["choices"][0]["message"]["content"]
    assert "https://www.example.net/etna" in done["response"]["citations"]

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"next_token": token} if token else {})}
        r = httpx.get(f"{api.base_url}{ASYNC}", params=params, headers=api.headers(), timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["requests"]) <= 2
        seen += [x["id"] for x in page["requests"]]
        pages += 1
        token = page["next_token"]
        if token is None:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen)) and pages >= 2  # no repeats across pages
    old = httpx.get(f"{api.base_url}/async/chat/completions/{ids[1]}", headers=api.headers(), timeout=30)
    assert old.status_code == 200 and old.json()["id"] == ids[1]  # one store behind both paths

    missing = httpx.get(f"{api.base_url}{ASYNC}/async_nothing", headers=api.headers(), timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "request_id"
    bad = httpx.post(
        f"{api.base_url}{ASYNC}",
        json={"request": {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}},
        headers=api.headers(),
        timeout=30,
    )
    assert bad.status_code == 404 and bad.json()["error"]["param"] == "model"  # refused now, not queued
