"""OpenAI's batch file format: the input file's lines read and checked, the output and error files' lines.

An input line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``;
a bad line is a 400 naming its line number. Output lines carry each finished request's response, error
lines each failed or expired one's, in input order.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

from groundglass.server import db
from groundglass.server.errors import APIError

CUSTOM_ID_MAX = db.job_items.c.custom_id.type.length or 200
EXPIRED_ERROR = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}


def parse_batch_file(content: bytes, endpoint: str, max_lines: int) -> list[tuple[str, dict[str, Any]]]:
    """The (custom_id, body) of each line of an OpenAI batch input file; APIError 400 naming a bad line."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(400, "the batch file is not UTF-8 text", code="invalid_file") from exc
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    accepted = {endpoint, "/v1/chat/completions", "/chat/completions"}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise APIError(
                400, f"batch file line {n} is not valid JSON ({exc.msg})", code="invalid_file"
            ) from exc
        if not isinstance(line, dict):
            raise APIError(400, f"batch file line {n} is not a JSON object", code="invalid_file")
        cid, method, url, body = line.get("custom_id"), line.get("method"), line.get("url"), line.get("body")
        if not isinstance(cid, str) or not cid:
            raise APIError(400, f"batch file line {n} has no custom_id", code="invalid_file")
        if len(cid) > CUSTOM_ID_MAX or "\x00" in cid:
            raise APIError(
                400,
                f"batch file line {n}: custom_id must be at most {CUSTOM_ID_MAX} characters, without NUL",
                code="invalid_file",
            )
        if cid in seen:
            raise APIError(
                400, f"batch file line {n}: custom_id {cid!r} is used twice", code="duplicate_custom_id"
            )
        if method != "POST":
            raise APIError(400, f"batch file line {n}: method must be POST", code="invalid_file")
        if url not in accepted:
            raise APIError(
                400,
                f"batch file line {n}: url {url!r} does not match the batch endpoint {endpoint}",
                code="invalid_file",
            )
        if not isinstance(body, dict):
            raise APIError(400, f"batch file line {n}: body must be a JSON object", code="invalid_file")
        seen.add(cid)
        out.append((cid, body))
        if len(out) > max_lines:
            raise APIError(
                400, f"the batch file has more than {max_lines} requests", code="too_many_requests"
            )
    if not out:
        raise APIError(400, "the batch file has no requests", code="empty_file")
    return out


def result_lines(rows: Iterable[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The output file's and the error file's lines for finished job lines (rows with ``custom_id``,
    ``status``, ``status_code``, ``response``, ``request_id``), in the order given."""
    output: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for r in rows:
        if r.status == "expired":  # as OpenAI writes it: no response, the error says why
            errors.append(
                {
                    "id": f"batch_req_{secrets.token_hex(12)}",
                    "custom_id": r.custom_id,
                    "response": None,
                    "error": dict(EXPIRED_ERROR),
                }
            )
            continue
        body = json.loads(r.response) if r.response else None
        line: dict[str, Any] = {
            "id": f"batch_req_{r.request_id or secrets.token_hex(8)}",
            "custom_id": r.custom_id,
            "response": {"status_code": r.status_code, "request_id": r.request_id, "body": body},
            "error": None,
        }
        if r.status == "done":
            output.append(line)
        else:
            err = (body or {}).get("error") or {}
            line["error"] = {
                "code": err.get("code") or "request_failed",
                "message": err.get("message", ""),
            }
            errors.append(line)
    return output, errors


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode("utf-8")
