"""`groundglass index ...` through the installed console script, including kill -9 and Ctrl-C mid-ingest."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from groundglass.answer.index import LocalIndex
from groundglass.config import load_settings

GG = str(Path(sys.executable).parent / "groundglass")


def gg(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [GG, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_add_list_stats_search_remove(gg_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kites.md").write_text("# Kites\n\nA box kite flies steadily in strong wind.\n")
    (folder / "bread.txt").write_text("Sourdough bread rises slowly with a wild yeast starter.\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300))
    add = gg("index", "add", str(folder), "--index", "notes")
    assert add.returncode == 0, add.stderr
    assert add.stdout.startswith("index 'notes': 2 added, 0 updated, 0 unchanged, 1 skipped (2 chunks")
    assert "photo.jpg: binary file" in add.stderr
    assert "3/3" in add.stderr  # the progress bar went to stderr

    listing = gg("index", "list")
    assert listing.returncode == 0 and listing.stdout.startswith("notes\t2 documents\t2 chunks\t")

    stats = gg("index", "stats", "--index", "notes", "--json", "--check")
    data = json.loads(stats.stdout)
    assert (data["documents"], data["chunks"], data["integrity"]) == (2, 2, "ok")
    assert data["kinds"] == {"markdown": 1, "text": 1}

    found = gg("index", "search", "which kite is stable in a gale?", "--index", "notes", "--json", "-k", "1")
    results = json.loads(found.stdout)
    assert [r["url"] for r in results] == [(folder / "kites.md").resolve().as_uri()]
    assert set(results[0]) == {"title", "url", "date", "last_updated", "snippet", "source", "score"}
    assert results[0]["source"] == "index"

    refused = gg("index", "remove", "notes")  # stdin is not a terminal: no silent deletion
    assert refused.returncode == 2
    assert refused.stderr == "error: removing index 'notes' needs confirmation (pass --yes)\n"
    removed = gg("index", "remove", "notes", "--yes")
    assert removed.returncode == 0 and removed.stdout == "removed index 'notes'\n"
    empty = gg("index", "list")
    assert empty.returncode == 0 and empty.stdout == "" and "no indexes yet" in empty.stderr


def test_errors_are_one_line_with_a_fix(gg_home: Path, tmp_path: Path) -> None:
    missing = gg("index", "stats", "--index", "missing")
    assert missing.returncode == 2
    assert missing.stderr == (
        "error: index 'missing' does not exist (create it with: groundglass index add PATH --index missing)\n"
    )

    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    nothing = gg("index", "add", str(tmp_path / "blob.bin"), "--index", "x", "--quiet")
    assert nothing.returncode == 2
    assert nothing.stderr.splitlines()[-1].startswith("error: nothing could be ingested: ")
    assert "binary" in nothing.stderr

    folder = gg_home / "indexes" / "broken"
    folder.mkdir(parents=True)
    (folder / "index.sqlite").write_bytes(b"garbage" * 1000)
    corrupt = gg("index", "stats", "--index", "broken")
    assert corrupt.returncode == 2 and len(corrupt.stderr.splitlines()) == 1
    assert "index 'broken'" in corrupt.stderr and "corrupt" in corrupt.stderr
    assert "groundglass index remove broken --yes" in corrupt.stderr
    listing = gg("index", "list")  # one bad index does not hide the others
    assert listing.returncode == 0 and listing.stdout.startswith("broken\tunusable: index 'broken'")

    bad_name = gg("index", "remove", "../../etc", "--yes")
    assert bad_name.returncode == 2 and "invalid index name" in bad_name.stderr


def test_crawl_from_the_cli(gg_home: Path, site_server) -> None:
    refused = gg("index", "add", site_server.base + "/", "--index", "web")
    assert refused.returncode == 2 and "refusing to fetch from 127.0.0.1" in refused.stderr
    assert "--allow-private" in refused.stderr
    ok = gg(
        "index",
        "add",
        site_server.base + "/",
        "--index",
        "web",
        "--allow-private",
        "--max-pages",
        "3",
        "--max-depth",
        "1",
        "--quiet",
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("index 'web': 2 added")  # 3 pages fetched, "/" and "/index.html" are one page


# ------------------------------------------------------------------------------------- interruption

N_FILES = 160  # ingest commits after every 64 chunks: 2.5 batches


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def _default_sigint() -> None:
    # a job started in the background inherits SIGINT ignored, and Python then never turns it into
    # KeyboardInterrupt: give the child the default disposition, as an interactive terminal would
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(folder: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            [GG, "index", "add", str(folder), "--index", "big", "--quiet"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ},
            preexec_fn=_default_sigint,
        )


def _wait_for(db: Path, more_than: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _count(db)
        if n > more_than:
            return n
        if proc.poll() is not None:
            pytest.fail(f"ingest exited early with {proc.returncode}")
        time.sleep(0.05)
    pytest.fail("nothing was committed in time")


def _check_consistent(settings, expected_docs: int) -> None:
    index = LocalIndex.open(settings, "big")
    assert index.integrity() == "ok"
    st = index.stats()
    assert st["documents"] == expected_docs
    con = sqlite3.connect(index.path)
    bad = con.execute(
        "SELECT COUNT(*) FROM documents d WHERE n_chunks != "
        "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id)"
    ).fetchone()[0]
    assert bad == 0  # no half-written document
    # raises if the FTS index is out of sync with the chunks
    con.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
    uri = con.execute("SELECT uri FROM documents ORDER BY id DESC LIMIT 1").fetchone()[0]
    con.close()
    n = int(Path(uri.removeprefix("file://")).stem.split("-")[1])
    hits = index.search(f"entry{n:04d}", k=1, mode="bm25")
    assert hits and hits[0].url == uri  # the last committed document is searchable
    index.close()


def test_interrupted_ingest_keeps_what_was_committed(gg_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logbook"
    folder.mkdir()
    for i in range(N_FILES):
        (folder / f"log-{i:04d}.txt").write_text(
            f"Logbook entry{i:04d}. On day {i} the keeper noted {i % 7} ships and wind force {i % 12}.\n"
        )
    db = gg_home / "indexes" / "big" / "index.sqlite"
    settings = load_settings()

    proc = _start(folder, tmp_path / "run1.log")  # 1. kill -9 right after the first commits
    _wait_for(db, 0, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    first = _count(db)
    assert 0 < first < N_FILES
    _check_consistent(settings, first)

    proc = _start(folder, tmp_path / "run2.log")  # 2. Ctrl-C once it has committed more
    _wait_for(db, first, proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "documents saved in index 'big'; run the same command again" in (tmp_path / "run2.log").read_text()
    second = _count(db)
    assert first < second < N_FILES
    _check_consistent(settings, second)

    done = gg("index", "add", str(folder), "--index", "big", "--quiet", timeout=240)  # 3. finish the job
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"index 'big': {N_FILES - second} added, 0 updated, {second} unchanged")
    _check_consistent(settings, N_FILES)
