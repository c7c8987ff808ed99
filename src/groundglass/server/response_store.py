"""Stored Responses API answers: what ``previous_response_id`` continues and ``GET /v1/responses/{id}``
reads.

Each answer is one row of ``db.responses``: the conversation through the answer (earlier turns, this
request's input, the answer; ``instructions`` are left out, since in OpenAI's API they hold for one
response only), the answer's sources (a follow-up that they already answer reuses them instead of
searching again) and the response object as it was returned. A response belongs to its project;
another project's id reads as missing. ``store: false`` keeps the row continuable but not readable.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from groundglass.answer.types import ChatMessage, Source
from groundglass.server import db

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.server.auth import Principal


def new_response_id() -> str:
    return f"resp_{secrets.token_hex(16)}"


@dataclass
class Stored:
    """An earlier response as a follow-up needs it."""

    id: str
    messages: list[ChatMessage]
    sources: list[Source]
    body: dict[str, Any]
    stored: bool


class ResponseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(
        self,
        who: Principal,
        body: dict[str, Any],
        messages: list[ChatMessage],
        sources: list[Source],
        *,
        stored: bool,
    ) -> None:
        row = {
            "id": body["id"],
            "project": who.project,
            "key_id": who.key_id,
            "model": str(body.get("model") or ""),
            "previous_response_id": body.get("previous_response_id"),
            "stored": 1 if stored else 0,
            "messages_json": json.dumps([{"role": m.role, "content": m.content} for m in messages]),
            "sources_json": json.dumps([asdict(s) for s in sources]),
            "body_json": json.dumps(body, ensure_ascii=False),
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(db.responses).values(**db.fit(db.responses, row)))

    def load(self, who: Principal, response_id: str) -> Stored | None:
        r = db.responses.c
        q = select(r.id, r.stored, r.messages_json, r.sources_json, r.body_json).where(r.id == response_id)
        if not who.admin:
            q = q.where(r.project == who.project)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        return Stored(
            id=row.id,
            messages=[ChatMessage(m["role"], m["content"]) for m in json.loads(row.messages_json)],
            sources=[Source(**s) for s in json.loads(row.sources_json)],
            body=json.loads(row.body_json),
            stored=bool(row.stored),
        )
