"""``response_format`` of type ``regex`` (Perplexity's), honoured through llama.cpp's grammar, and the
files API's own details (one ``POST /v1/files`` operation; each file served with its own media type),
against a real server with the tiny model, through the official ``openai`` client."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest
from finetune_helpers import stars_zip
from server_helpers import Api, oai

YEAR = r"(18|19)\d{2}"  # \\d: spelled out as [0-9] for the grammar


def regex(pattern: str) -> Any:
    return {"type": "regex", "regex": {"regex": pattern}}


def test_a_regex_response_format_is_matched_by_the_whole_answer(api: Api) -> None:
    question = [{"role": "user", "content": "When was the Eiffel Tower completed?"}]
    r = oai(api).chat.completions.create(
        model="sonar", messages=question, max_tokens=16, temperature=0, response_format=regex(YEAR)
    )
    content = r.choices[0].message.content or ""
    assert re.fullmatch(YEAR, content), content  # the string itself, not JSON
    stream = oai(api).chat.completions.create(
        model="sonar", messages=question, max_tokens=16, stream=True, response_format=regex("^" + YEAR + "$")
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert re.fullmatch(YEAR, text), text
    # a class that starts with "]" (llama.cpp's converter looped for ever on it), and "." that may
    # not write a double quote, since the answer travels as a JSON string
    letters = "[]A-Za-z ]{1,30}.?"
    r = oai(api).chat.completions.create(
        model="sonar", messages=question, max_tokens=16, response_format=regex(letters)
    )
    content = r.choices[0].message.content or ""
    assert re.fullmatch(letters, content) and '"' not in content, content


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(18", "the regex is invalid"),
        ("(?=1)[0-9]{4}", "cannot be honoured"),
        ("(?i)eiffel", "flags"),
        ("", "the regex is empty"),
        ("a{501}", "more than 500 times"),
        ('"[0-9]+"', "double quote"),
    ],
)
def test_a_regex_that_cannot_be_honoured_is_a_400_naming_it(api: Api, pattern: str, words: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(api).chat.completions.create(
            model="sonar",
            messages=[{"role": "user", "content": "When was the Eiffel Tower completed?"}],
            max_tokens=8,
            response_format=regex(pattern),
        )
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "response_format.regex.regex"
    assert words in body["message"]


def test_one_upload_operation_and_files_served_as_what_they_are(api: Api) -> None:
    spec = httpx.get(api.base_url + "/openapi.json").json()  # FastAPI names each operation now
    assert "post" in spec["paths"]["/v1/files"] and "get" in spec["paths"]["/v1/models"]
    # two routes for one path and method collapse into one entry of the document: only the server's
    # own warning tells (it named upload_file, list_models and get_model)
    assert "Duplicate Operation ID" not in api.server.log.read_text(errors="replace")

    client = oai(api)
    photos = client.files.create(file=("stars.zip", stars_zip(), "application/zip"), purpose="fine-tune")
    served = client.files.content(photos.id)
    assert served.response.headers["content-type"] == "application/zip"
    assert served.content[:4] == b"PK\x03\x04"
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "sonar"}}
    batch = client.files.create(file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch")
    served = client.files.content(batch.id)
    assert served.response.headers["content-type"] == "application/jsonl"
