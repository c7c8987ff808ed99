"""What the page needs from the API, through plain HTTP (any client gets the same): the page and its
assets, GET /v1/indexes, the request's ``search``/``index``, the stream's ``reasoning_step`` chunks
and the last chunk's ``attribution``, and the threads API (per project, shared read-only)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from web_helpers import Site

EIFFEL = "When was the Eiffel Tower completed?"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def stream(site: Site, body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(chunks, error events) of one streamed chat completion."""
    chunks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    event = "message"
    with httpx.stream(
        "POST",
        site.url + "/chat/completions",
        headers=auth(site.key),
        timeout=180,
        json={"model": "sonar", "stream": True, **body},
    ) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
                if data != "[DONE]":
                    (errors if event == "error" else chunks).append(json.loads(data))
                event = "message"
    return chunks, errors


def test_the_page_and_its_assets_are_served_with_a_strict_policy(site: Site) -> None:
    r = httpx.get(site.url + "/", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert '<script type="module" src="/static/js/app.js">' in r.text
    for path, kind in (
        ("/static/js/app.js", "javascript"),
        ("/static/style.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ):
        asset = httpx.get(site.url + path, timeout=30)
        assert asset.status_code == 200 and kind in asset.headers["content-type"], path
    links = re.findall(r'(?:src|href)="([^"]*)"', r.text)
    assert links and all(link.startswith(("/", "#")) for link in links), links  # no CDN: all from here
    assert httpx.get(site.url + "/share/shr_anything", timeout=30).text == r.text
    assert httpx.get(site.url + "/static/../server.db", timeout=30).status_code == 404


def test_indexes_are_listed_and_a_request_may_name_one(site: Site) -> None:
    r = httpx.get(site.url + "/v1/indexes", headers=auth(site.key), timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "docs"
    assert [(i["id"], i["documents"]) for i in body["data"]] == [("docs", 7)]
    assert httpx.get(site.url + "/v1/indexes", timeout=30).status_code == 401

    missing = httpx.post(
        site.url + "/chat/completions",
        headers=auth(site.key),
        timeout=60,
        json={"model": "sonar", "index": "nope", "messages": [{"role": "user", "content": EIFFEL}]},
    )
    assert missing.status_code == 404 and "index 'nope' does not exist" in missing.json()["error"]["message"]
    bad = httpx.post(
        site.url + "/chat/completions",
        headers=auth(site.key),
        timeout=60,
        json={"model": "sonar", "source": "moon", "messages": [{"role": "user", "content": EIFFEL}]},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "source"


def test_the_stream_carries_steps_as_they_finish_and_attribution_at_the_end(site: Site) -> None:
    chunks, errors = stream(
        site,
        {
            "index": "docs",
            "source": "index",
            "reasoning_effort": "medium",
            "messages": [{"role": "user", "content": EIFFEL}],
        },
    )
    assert errors == []
    steps = [i for i, c in enumerate(chunks) if "reasoning_step" in c]
    sources = next(i for i, c in enumerate(chunks) if "search_results" in c)
    assert steps and steps[0] < sources  # each step arrives when it ends, before the answer
    step = chunks[steps[0]]["reasoning_step"]
    assert step["query"] and step["seconds"] >= 0 and isinstance(step["sources"], list)
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] in ("stop", "length")
    assert isinstance(last["attribution"], list) and last["declined"] in (True, False)
    for item in last["attribution"]:
        assert set(item) >= {"sentence", "citations", "support", "supported"}
    assert [s["id"] for s in last["reasoning"]["steps"]] == [chunks[i]["reasoning_step"]["id"] for i in steps]


def test_threads_api_per_project_with_a_read_only_share(site: Site) -> None:
    base = site.url + "/v1/threads"
    created = httpx.post(base, headers=auth(site.key), json={"title": EIFFEL}, timeout=30)
    assert created.status_code == 201
    thread = created.json()
    tid = thread["id"]
    assert thread["title"] == EIFFEL and thread["turn_count"] == 0 and not thread["shared"]
    turn = {
        "question": EIFFEL,
        "answer": "In 1889 [1].",
        "details": {"search_results": [{"title": "Eiffel Tower", "url": "https://example.org"}]},
    }
    added = httpx.post(f"{base}/{tid}/turns", headers=auth(site.key), json=turn, timeout=30)
    assert added.status_code == 201 and added.json()["position"] == 0
    listed = httpx.get(base, headers=auth(site.key), timeout=30).json()["data"]
    assert tid in [t["id"] for t in listed]
    got = httpx.get(f"{base}/{tid}", headers=auth(site.key), timeout=30).json()
    assert got["turns"][0]["details"] == turn["details"]

    # another project neither sees nor changes it
    theirs = httpx.get(base, headers=auth(site.other_key), timeout=30).json()["data"]
    assert tid not in [t["id"] for t in theirs]
    for method, url in (
        ("GET", f"{base}/{tid}"),
        ("DELETE", f"{base}/{tid}"),
        ("POST", f"{base}/{tid}/share"),
    ):
        r = httpx.request(method, url, headers=auth(site.other_key), timeout=30)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, url)
    # but reads it through its share link
    share = httpx.post(f"{base}/{tid}/share", headers=auth(site.key), timeout=30).json()
    assert share["url"] == f"/share/{share['share_id']}"
    shared = httpx.get(f"{site.url}/v1/shared/{share['share_id']}", headers=auth(site.other_key), timeout=30)
    assert shared.status_code == 200 and shared.json()["read_only"] and len(shared.json()["turns"]) == 1
    assert httpx.get(f"{site.url}/v1/shared/{share['share_id']}", timeout=30).status_code == 401

    bad = httpx.post(f"{base}/{tid}/turns", headers=auth(site.key), json={"answer": "x"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "question"
    assert httpx.get(base, timeout=30).status_code == 401

    deleted = httpx.delete(f"{base}/{tid}", headers=auth(site.key), timeout=30)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert httpx.get(f"{base}/{tid}", headers=auth(site.key), timeout=30).status_code == 404
    gone = httpx.get(f"{site.url}/v1/shared/{share['share_id']}", headers=auth(site.other_key), timeout=30)
    assert gone.status_code == 404
