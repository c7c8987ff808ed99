"""The server's parts on their own, against real SQLite and the real `limits` library (no HTTP)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import warnings
from pathlib import Path

import pytest

from groundglass.answer.retrieve import source_filter
from groundglass.answer.types import Source
from groundglass.config import Settings, load_settings
from groundglass.errors import GroundglassError, NotFoundError
from groundglass.server.auth import KeyStore, Principal, hash_key
from groundglass.server.batch_file import parse_batch_file
from groundglass.server.db import get_engine
from groundglass.server.errors import APIError
from groundglass.server.filters import build_filters
from groundglass.server.jobs import JobStore
from groundglass.server.limits import RateLimits
from groundglass.server.schemas import SearchRequest
from groundglass.server.usage import Ledger, Pricing, UsageEntry


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GROUNDGLASS_HOME", str(tmp_path))
    monkeypatch.delenv("GROUNDGLASS_CONFIG", raising=False)
    return load_settings()


def test_prices_follow_the_sonar_structure(settings: Settings) -> None:
    pricing = Pricing(settings.server)
    c = pricing.chat(
        "sonar-deep-research",
        prompt_tokens=1_000_000,
        completion_tokens=500_000,
        citation_tokens=200_000,
        reasoning_tokens=100_000,
        num_search_queries=10,
        search_context_size="high",
    )
    assert c.as_dict() == {
        "input_tokens_cost": 2.0,
        "output_tokens_cost": 4.0,
        "citation_tokens_cost": 0.4,
        "reasoning_tokens_cost": 0.3,
        "search_queries_cost": 0.05,
        "request_cost": 0.0,
        "total_cost": 6.75,
    }
    low = pricing.chat("sonar", prompt_tokens=1000, completion_tokens=1000, search_context_size="low")
    assert low.request_cost == pytest.approx(0.005) and low.total_cost == pytest.approx(0.007)
    assert pricing.chat("my-own-model", prompt_tokens=10**6, completion_tokens=0).total_cost == 0.0
    custom = Settings.model_validate({"server": {"prices": {"default": {"input_per_million": 7}}}})
    assert (
        Pricing(custom.server).chat("my-own-model", prompt_tokens=10**6, completion_tokens=0).total_cost
        == 7.0 + 0.005
    )
    assert pricing.search().total_cost == pytest.approx(0.005)


def test_server_settings_merge_presets_and_refuse_unknown_keys(tmp_path: Path) -> None:
    s = Settings.model_validate({"server": {"models": {"team": {"llm": "tiny", "top_k": 3}}}})
    assert {"sonar", "sonar-pro", "sonar-reasoning-pro", "sonar-deep-research", "team"} <= set(
        s.server.models
    )
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nport = "eighty"\n')
    with pytest.raises(GroundglassError, match=r"server\.port"):
        load_settings(config)
    config.write_text("[server]\ncolour = 1\n")
    with pytest.raises(GroundglassError, match=r"server\.colour"):
        load_settings(config)


def test_keys_are_stored_hashed_and_revocable(settings: Settings) -> None:
    store = KeyStore(get_engine(settings), settings)
    secret, record = store.create("acme", rpm=5)
    assert secret.startswith("gg-") and len(secret) > 40 and record["rpm"] == 5
    assert record["tpm"] == settings.server.default_tpm
    db_text = b"".join(p.read_bytes() for p in settings.home.glob("server.db*"))  # the file and its WAL
    assert secret.encode() not in db_text and hash_key(secret).encode() in db_text
    who = store.lookup(secret)
    assert who == Principal(key_id=record["id"], project="acme", rpm=5, tpm=settings.server.default_tpm)
    assert store.lookup(secret + "x") is None
    store.revoke(secret)  # by the key itself
    assert store.lookup(secret) is None
    other, rec2 = store.create("acme")
    store.revoke(rec2["id"])  # by its public id
    assert store.lookup(other) is None
    with pytest.raises(NotFoundError):
        store.revoke("key_nope")
    with pytest.raises(GroundglassError, match="--rpm"):
        store.create("acme", rpm=0)
    with pytest.raises(GroundglassError, match="project"):
        store.create("  ")


def test_ledger_groups_by_key_project_model_and_day(settings: Settings) -> None:
    ledger = Ledger(get_engine(settings))
    day1 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC).timestamp()
    day2 = dt.datetime(2025, 3, 2, 12, tzinfo=dt.UTC).timestamp()
    for n, (key, project, model, when) in enumerate(
        [
            ("k1", "a", "sonar", day1),
            ("k1", "a", "sonar", day2),
            ("k2", "a", "sonar-pro", day2),
            ("k3", "b", "sonar", day2),
        ]
    ):
        entry = UsageEntry(
            request_id=f"r{n}",
            key_id=key,
            project=project,
            model=model,
            endpoint="/chat/completions",
            prompt_tokens=100,
            completion_tokens=10,
            created_at=when,
        )
        entry.cost.request_cost = 0.005
        ledger.record(entry)
    by_day = ledger.report(["day"])
    assert [(r["day"], r["requests"]) for r in by_day] == [("2025-03-01", 1), ("2025-03-02", 3)]
    by_pm = {(r["project"], r["model"]): r for r in ledger.report(["project", "model"])}
    assert by_pm[("a", "sonar")]["prompt_tokens"] == 200 and by_pm[("a", "sonar")]["total_cost"] == 0.01
    assert ledger.report(["key"], project="a", start="2025-03-02") == [
        r for r in ledger.report(["key"], start="2025-03-02") if r["key"] in ("k1", "k2")
    ]
    assert ledger.report([], end="2025-03-01")[0]["requests"] == 1
    with pytest.raises(GroundglassError, match="cannot group"):
        ledger.report(["colour"])
    with pytest.raises(GroundglassError, match="YYYY-MM-DD"):
        ledger.report(["day"], start="March")


def test_memory_rate_limits_are_exact_under_concurrency() -> None:
    async def run() -> tuple[int, list[APIError]]:
        limits = RateLimits("memory://")
        who = Principal(key_id="k", project="p", rpm=7, tpm=1000)

        async def one() -> APIError | None:
            try:
                await limits.admit(who)
                return None
            except APIError as exc:
                return exc

        results = await asyncio.gather(*(one() for _ in range(50)))
        refused = [r for r in results if r is not None]
        return 50 - len(refused), refused

    admitted, refused = asyncio.run(run())
    assert admitted == 7
    assert all(r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60 for r in refused)


def test_tokens_per_minute_counts_finished_requests() -> None:
    async def run() -> None:
        limits = RateLimits("memory://")
        who = Principal(key_id="t", project="p", rpm=100, tpm=500)
        await limits.admit(who)
        await limits.charge_tokens(who, 499)
        await limits.admit(who)  # one token left: still admitted
        await limits.charge_tokens(who, 10)
        with pytest.raises(APIError) as info:
            await limits.admit(who)
        assert info.value.status == 429 and "tokens per minute" in info.value.message

    asyncio.run(run())
    with pytest.raises(GroundglassError, match="rate_limit_storage"):
        RateLimits("carrier-pigeon://coop")


def src(url: str, date: str | None) -> Source:
    return Source(url=url, title="t", text="x", date=date)


def keep_for(**fields: object):  # type: ignore[no-untyped-def]
    keep = source_filter(build_filters(SearchRequest.model_validate({"query": "q", **fields})))
    assert keep is not None
    return keep


def test_source_filters_domains_and_dates() -> None:
    keep = keep_for(search_domain_filter=["wikipedia.org", "-de.wikipedia.org"])
    assert keep(src("https://en.wikipedia.org/wiki/X", None))
    assert not keep(src("https://de.wikipedia.org/wiki/X", None))
    assert not keep(src("https://notwikipedia.org/x", None))
    dated = keep_for(search_after_date_filter="3/1/2025", search_before_date_filter="2025-03-31")
    assert dated(src("https://a.org", "2025-03-15")) and not dated(src("https://a.org", "2025-04-01"))
    assert not dated(src("https://a.org", None))  # unknown dates cannot pass a date filter
    # last_updated_* bound the day the page changed (checked on read pages), not the publication date
    changed = build_filters(
        SearchRequest.model_validate({"query": "q", "last_updated_before_filter": "3/31/2025"})
    )
    assert changed.before is None and changed.updated_before == dt.date(2025, 3, 31)
    assert changed.check_updated("2025-03-31") is None and changed.check_updated("2025-04-01")
    assert changed.check_updated(None)  # a page that does not say when it changed is kept out
    today = dt.date.today()
    week = keep_for(search_recency_filter="week")
    assert week(src("https://a.org", today.isoformat()))
    assert not week(src("https://a.org", (today - dt.timedelta(days=30)).isoformat()))
    assert source_filter(build_filters(SearchRequest.model_validate({"query": "q"}))) is None
    for fields, param in [
        (
            {"search_after_date_filter": "5/1/2025", "search_before_date_filter": "4/1/2025"},
            "search_after_date_filter",
        ),
        ({"search_domain_filter": ["not a domain!"]}, "search_domain_filter"),
        ({"last_updated_after_filter": "yesterday"}, "last_updated_after_filter"),
    ]:
        with pytest.raises(APIError) as info:
            build_filters(SearchRequest.model_validate({"query": "q", **fields}))
        assert info.value.status == 400 and info.value.param == param


def line(cid: str, url: str = "/v1/chat/completions", **kw: object) -> bytes:
    body = {"model": "sonar", "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body, **kw}).encode() + b"\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no requests"),
        (b"{oops\n", "line 1 is not valid JSON"),
        (line("a") + line("a"), "used twice"),
        (line("a", url="/v1/embeddings"), "does not match"),
        (line("a", method="GET"), "method must be POST"),
        (b"\xff\xfe\n", "not UTF-8"),
    ],
)
def test_batch_files_are_checked_line_by_line(content: bytes, message: str) -> None:
    with pytest.raises(APIError, match=message) as info:
        parse_batch_file(content, "/v1/chat/completions", 100)
    assert info.value.status == 400


def test_job_lines_are_claimed_once_and_committed_once(settings: Settings) -> None:
    engine = get_engine(settings)
    store = JobStore(engine, Ledger(engine))
    who = Principal(key_id="k", project="p", rpm=1, tpm=1)
    store.files.create_file("p", "batch", "in.jsonl", line("a") + line("b"))
    file_id = store.files.list_files(who)[0]["id"]
    batch = store.create_batch(who, file_id, "/v1/chat/completions", None, 10)
    first, second = store.claim("w1/0", 60), store.claim("w2/0", 60)
    assert first and second and first["custom_id"] != second["custom_id"]
    assert store.claim("w3/0", 60) is None  # nothing left to take
    entry = UsageEntry(request_id="r1", key_id="k", project="p", model="sonar", endpoint="/chat/completions")
    assert store.finish(first, 200, {"usage": {"prompt_tokens": 3}}, "r1", entry)
    assert not store.finish(first, 200, {}, "r1-again", entry)  # already committed: never twice
    # w2 dies with "b" in flight: its lease runs out and another worker takes the line over
    store.renew("w2", -1)
    taken = store.claim("w4/0", 60)
    assert taken and taken["custom_id"] == second["custom_id"] and taken["attempts"] == 2
    assert not store.finish(second, 200, {}, "stale", entry)  # the dead worker's late result is refused
    assert store.finish(taken, 200, {}, "r2", entry)
    job = store.get_job(who, batch["id"], "batch")
    assert job and job["status"] == "completed" and job["counts"]["completed"] == 2 and job["output_file_id"]
    out = store.files.get_file(who, job["output_file_id"], content=True)
    assert out and [json.loads(x)["custom_id"] for x in out["content"].decode().splitlines()] == ["a", "b"]
    assert Ledger(engine).count() == 2  # one row per committed line
    assert time.time() > 0


@pytest.mark.parametrize("key", ["context_scales", "context_sizes"])  # the old key: one more release
def test_a_larger_context_size_scales_the_preset(tmp_path: Path, key: str) -> None:
    from groundglass.server.answering import Answerer
    from groundglass.server.schemas import ChatRequest

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = load_settings(None, home=str(tmp_path), server={key: {"high": 3.0}})
    warned = any("server.context_sizes is deprecated" in str(w.message) for w in caught)
    assert warned == (key == "context_sizes")
    preset = s.server.models["sonar"]
    body = {"model": "sonar", "messages": [{"role": "user", "content": "How tall is the Eiffel Tower?"}]}
    base = Answerer(s).plan(ChatRequest.model_validate(body))
    high = Answerer(s).plan(
        ChatRequest.model_validate({**body, "web_search_options": {"search_context_size": "high"}})
    )
    assert (base.context_tokens, base.ask.top_k) == (preset.context_tokens, preset.top_k)
    # sonar's own size is low (1.0): high is 3x its sources and tokens
    assert (high.context_tokens, high.ask.top_k) == (3 * preset.context_tokens, 3 * preset.top_k)
