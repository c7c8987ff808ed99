"""Rate limits per key (RPM, TPM), exact under parallel clients, in memory and shared through Redis."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from server_helpers import Api, Server, create_key, free_port, ledger_rows, make_home


def search(base_url: str, key: str, query: str = "Apollo Moon landing") -> httpx.Response:
    return httpx.post(
        base_url + "/search",
        json={"query": query, "max_results": 2},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )


def key_id_of(home: Path, project: str) -> str:
    rows = ledger_rows(home, project=project)
    assert rows, f"no ledger rows for {project}"
    return str(rows[0]["key_id"])


def test_rpm_is_exact_under_parallel_clients_with_retry_after(api: Api) -> None:
    key = create_key(api.home, "rpm-test", rpm=10)
    with ThreadPoolExecutor(max_workers=30) as pool:
        responses = list(pool.map(lambda _: search(api.base_url, key), range(30)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 429: 20}, statuses
    refused = [r for r in responses if r.status_code == 429]
    for r in refused:
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["x-ratelimit-limit-requests"] == "10"
        err = r.json()["error"]
        assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
    rows = ledger_rows(api.home, project="rpm-test")
    assert Counter(x["status"] for x in rows) == {200: 10, 429: 20}  # every request is in the ledger
    assert sum(x["total_cost"] for x in rows) == pytest.approx(10 * 0.005)  # only answered ones cost

    with pytest.raises(openai.RateLimitError) as info:
        openai.OpenAI(base_url=api.base_url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model="sonar", messages=[{"role": "user", "content": "hi"}]
        )
    assert int(info.value.response.headers["retry-after"]) >= 1


def test_tpm_limit_refuses_once_the_minute_is_spent(api: Api) -> None:
    key = create_key(api.home, "tpm-test", tpm=60)
    client = openai.OpenAI(base_url=api.base_url + "/v1", api_key=key, max_retries=0, timeout=120)
    r = client.chat.completions.create(
        model="sonar", max_tokens=8, messages=[{"role": "user", "content": "Who was Ada Lovelace?"}]
    )
    assert r.usage.total_tokens > 60  # one request takes the key past its TPM...
    with pytest.raises(openai.RateLimitError) as info:  # ...so the next one waits for the window
        client.chat.completions.create(
            model="sonar", max_tokens=8, messages=[{"role": "user", "content": "Who was Ada Lovelace?"}]
        )
    assert "tokens per minute" in info.value.message
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60


def test_parallel_chat_clients_leave_a_complete_ledger(api: Api) -> None:
    key = create_key(api.home, "parallel")
    client = openai.OpenAI(base_url=api.base_url + "/v1", api_key=key, max_retries=0, timeout=300)

    def ask(n: int) -> openai.types.chat.ChatCompletion:
        return client.chat.completions.create(
            model="sonar",
            max_tokens=4,
            extra_body={"disable_search": True},
            messages=[{"role": "user", "content": f"Question {n}: what is Mount Etna?"}],
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(ask, range(10)))
    rows = {x["request_id"]: x for x in ledger_rows(api.home, project="parallel")}
    assert set(rows) == {a.id for a in answers}  # one row per request, none lost, none doubled
    for a in answers:
        assert rows[a.id]["completion_tokens"] == a.usage.completion_tokens
        assert rows[a.id]["prompt_tokens"] == a.usage.prompt_tokens


# --- Redis: limits shared by several server processes ----------------------------------------------


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (Debian package)")
    port = free_port()
    cmd = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_limits_hold_across_processes(index_home: Path, tmp_path: Path, redis_url: str) -> None:
    home = make_home(index_home, tmp_path / "home", rate_limit_storage=redis_url)
    key = create_key(home, "shared", rpm=6)
    # two servers on two ports, the first with two worker processes: three processes, one Redis
    a = Server(home, free_port(), args=["--workers", "2"]).start()
    b = Server(home, free_port()).start()
    try:
        for s in (a, b):  # load the index and embedder in each server before counting
            assert httpx.get(s.base_url + "/healthz").json()["checks"]["rate_limit_storage"] is True
        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(pool.map(lambda n: search((a, b)[n % 2].base_url, key), range(12)))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 6, 429: 6}, statuses
        import redis

        assert redis.Redis.from_url(redis_url).keys("LIMITS*"), "no limiter keys in Redis"
        served = Counter(ledger_rows(home, project="shared")[i]["status"] for i in range(12))
        assert served == {200: 6, 429: 6}

        # Redis goes away: a clean 503, never a 500 or a hang
        redis.Redis.from_url(redis_url).shutdown(nosave=True)
        r = search(b.base_url, key)
        assert r.status_code == 503 and r.json()["error"]["code"] == "rate_limit_storage_unavailable"
        health = httpx.get(b.base_url + "/healthz")
        assert health.status_code == 503 and health.json()["checks"]["rate_limit_storage"] is False
    finally:
        a.stop()
        b.stop()
