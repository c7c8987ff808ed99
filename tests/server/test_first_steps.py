"""What a new user trying the README's API examples runs into: a search that finds nothing, a body
without its JSON Content-Type (``curl -d`` sends a form's), a missing /search query. Each is answered
as the README says, or refused with a 400 that names the problem and the fix.
"""

from __future__ import annotations

from typing import Any

import httpx
from server_helpers import Api


def post(api: Api, path: str, content_type: str | None = None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.key}"}
    if content_type:
        headers["Content-Type"] = content_type
    return httpx.post(api.base_url + path, headers=headers, timeout=60, **kw)


def test_a_search_that_finds_nothing_is_an_empty_list(corpus_api: Api, web: tuple[Any, Any]) -> None:
    _, search = web
    search.mode.update(searxng="empty", tavily="empty")
    r = post(corpus_api, "/search", json={"query": "xyzzy plugh", "max_results": 5})
    assert r.status_code == 200, r.text  # was a 502 "no search provider answered", retried by clients
    assert r.json()["results"] == []
    assert search.hits["searxng"] == 1 and search.hits["tavily"] == 1
    search.mode.update(searxng="503", tavily="503")  # none answering at all is still the 502
    r = post(corpus_api, "/search", json={"query": "xyzzy plugh"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "search_failed", r.text


def test_a_bad_search_query_names_the_query(corpus_api: Api) -> None:
    for body, words in [({}, "missing required parameter 'query'"), ({"query": ""}, "a query is empty")]:
        r = post(corpus_api, "/search", json=body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "query" and words in error["message"], error


def test_a_json_body_sent_as_a_form_says_which_header_is_missing(corpus_api: Api) -> None:
    # the README's threads example: curl -d '{"title": ...}' sends Content-Type x-www-form-urlencoded
    for path, body in [("/v1/threads", '{"title": "Eiffel"}'), ("/search", '{"query": "Eiffel"}')]:
        r = post(corpus_api, path, "application/x-www-form-urlencoded", content=body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_json" and "'Content-Type: application/json'" in error["message"]
    r = post(corpus_api, "/v1/threads", "application/json", content='{"title": "Eiffel"}')
    assert r.status_code in (200, 201) and r.json()["title"] == "Eiffel", r.text


def test_a_wrong_key_says_how_to_find_a_good_one(corpus_api: Api) -> None:
    for headers in (
        {"Authorization": "Bearer gg-not-a-key"},
        {"Authorization": f"Bearer {corpus_api.key[:-3]}"},
    ):
        r = httpx.post(corpus_api.base_url + "/search", json={"query": "x"}, headers=headers, timeout=30)
        assert r.status_code == 401, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_api_key" and "groundglass keys list" in error["message"], error


def test_an_upload_with_an_unknown_purpose_names_both_purposes(corpus_api: Api) -> None:
    files = {"file": ("requests.jsonl", b'{"custom_id": "1"}\n', "application/jsonl")}
    r = post(corpus_api, "/v1/files", data={"purpose": "colour"}, files=files)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "purpose" and "'batch'" in error["message"] and "'fine-tune'" in error["message"]
