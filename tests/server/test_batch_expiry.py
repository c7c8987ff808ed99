"""Batches expire as OpenAI's do: a batch not finished within its window
(``server.batch_completion_window_s``, OpenAI's ``24h``; a few seconds here) ends ``expired``, its
finished lines in the output file and every unfinished one in the error file with code
``batch_expired``, unbilled.

The worker is stopped for real: the whole server process is frozen (SIGSTOP) past the window, then
thawed; in the second test it is killed, and started again after the window.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import openai
from server_helpers import Server, create_key, free_port, ledger_rows, make_home
from test_jobs import QUESTIONS, batch_file, jsonl, wait_for

WINDOW_S = 8


def expired_lines_check(
    client: openai.OpenAI, batch_id: str, total: int
) -> tuple[Any, list[dict], list[dict]]:
    """The expired batch and its output and error lines, checked against each other."""
    final = client.batches.retrieve(batch_id)
    assert final.status == "expired" and final.expired_at and final.expired_at >= final.expires_at
    counts = final.request_counts
    assert counts.total == total and counts.completed + counts.failed == total and counts.failed >= 1
    out = jsonl(client.files.content(final.output_file_id).content) if final.output_file_id else []
    errors = jsonl(client.files.content(final.error_file_id).content)
    assert len(out) == counts.completed and len(errors) == counts.failed
    assert all(x["response"]["status_code"] == 200 for x in out)
    for e in errors:  # OpenAI's shape: no response, the error says why
        assert e["response"] is None and e["error"]["code"] == "batch_expired", e
        assert "completion window" in e["error"]["message"]
    ids = [x["custom_id"] for x in out + errors]
    assert sorted(ids) == sorted(f"q{i}" for i in range(total))  # each line exactly once
    return final, out, errors


def test_a_frozen_worker_past_the_window_leaves_an_expired_batch(index_home: Path, tmp_path: Path) -> None:
    home = make_home(index_home, tmp_path / "home", batch_completion_window_s=WINDOW_S)
    key = create_key(home, "late")
    server = Server(home, free_port()).start()
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=60)
    try:
        client.chat.completions.create(  # the model is loaded before the clock of the batch starts
            model="sonar", max_tokens=4, messages=[{"role": "user", "content": "Where is Mount Etna?"}]
        )
        f = client.files.create(file=("twelve.jsonl", batch_file(QUESTIONS * 2)), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert batch.completion_window == "24h" and batch.expired_at is None
        assert abs(batch.expires_at - (batch.created_at + WINDOW_S)) <= 1
        wait_for(
            lambda: client.batches.retrieve(batch.id),
            lambda b: b.request_counts.completed >= 1 or b.status != "in_progress",
            every=0.1,
        )
        os.killpg(server.proc.pid, signal.SIGSTOP)  # the worker stops mid-batch, a line likely running
        try:
            time.sleep(max(0.0, batch.expires_at + 2 - time.time()))
        finally:
            os.killpg(server.proc.pid, signal.SIGCONT)
        wait_for(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "expired", timeout=60)
        final, out, _ = expired_lines_check(client, batch.id, 12)
        assert out, "the line finished before the freeze is in the output file"

        billed = ledger_rows(home, project="late")
        assert len(billed) == 1 + len(
            out
        )  # the warm-up chat and the finished lines; expired ones cost nothing
        assert {x["response"]["request_id"] for x in out} <= {x["request_id"] for x in billed}
        time.sleep(1.5)  # a line that was running when the window closed: its late result is dropped
        again = client.batches.retrieve(batch.id)
        assert (again.status, again.request_counts) == ("expired", final.request_counts)
        assert len(ledger_rows(home, project="late")) == len(billed)
        assert client.batches.cancel(batch.id).status == "expired"  # nothing left to cancel
    finally:
        server.stop()


def test_a_batch_whose_server_was_down_past_the_window_expires_at_the_next_start(
    index_home: Path, tmp_path: Path
) -> None:
    home = make_home(index_home, tmp_path / "home", batch_completion_window_s=WINDOW_S)
    key = create_key(home, "down")
    server = Server(home, free_port()).start()
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=60)
    try:
        f = client.files.create(file=("six.jsonl", batch_file(QUESTIONS)), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        server.kill()  # SIGKILL: the batch's expires_at is all that is left of it, in the database
        time.sleep(max(0.0, batch.expires_at + 1 - time.time()))
        server = Server(home, server.port)
        server.start()
        wait_for(lambda: client.batches.retrieve(batch.id), lambda b: b.status == "expired", timeout=60)
        _, out, _ = expired_lines_check(client, batch.id, 6)
        assert len(ledger_rows(home, project="down")) == len(out)  # only finished lines were billed
    finally:
        server.stop()


def test_a_database_from_before_expiry_gains_its_columns(tmp_path: Path) -> None:
    from sqlalchemy import inspect, text

    from groundglass.config import load_settings
    from groundglass.server import db

    settings = load_settings(None, home=str(tmp_path))
    engine = db.get_engine(settings)
    with engine.begin() as conn:  # the jobs table as the previous version created it
        conn.execute(text("ALTER TABLE jobs DROP COLUMN expires_at"))
        conn.execute(text("ALTER TABLE jobs DROP COLUMN expired_at"))
        conn.execute(text("DROP TABLE schema_migrations"))  # which recorded no migrations
    db.dispose_engines()
    columns = {c["name"] for c in inspect(db.get_engine(settings)).get_columns("jobs")}
    assert {"expires_at", "expired_at"} <= columns
    db.dispose_engines()
