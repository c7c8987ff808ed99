"""Helpers for the HTTP API tests: a small real index, real server processes on 127.0.0.1, real keys.

Servers run as ``groundglass serve`` subprocesses (the command users run), each with its own
``$GROUNDGLASS_HOME`` holding a config file (tiny model, the test index, a short job lease).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
from perplexity import Perplexity

TODAY = dt.date.today().isoformat()

DOCS = [
    (
        "https://en.wikipedia.org/wiki/Ada_Lovelace",
        "Ada Lovelace",
        "2023-01-10",
        "Ada Lovelace was an English mathematician. In 1843 she published the first computer program, an "
        "algorithm for Charles Babbage's Analytical Engine.",
    ),
    (
        "https://en.wikipedia.org/wiki/Eiffel_Tower",
        "Eiffel Tower",
        "2024-03-05",
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 and is "
        "330 metres tall.",
    ),
    (
        "https://docs.python.org/3/tutorial",
        "Python tutorial",
        "2025-01-15",
        "Python is a programming language created by Guido van Rossum and first released in 1991.",
    ),
    (
        "https://blog.example.com/rust",
        "Rust language",
        "2019-06-01",
        "Rust is a systems programming language focused on memory safety, first released in 2015.",
    ),
    (
        "https://news.example.org/apollo",
        "Apollo 11",
        "2021-07-20",
        "Apollo 11 landed the first humans on the Moon on 20 July 1969; Neil Armstrong stepped out first.",
    ),
    (
        "https://www.example.net/etna",
        "Mount Etna",
        None,
        "Mount Etna is an active volcano on the east coast of Sicily, Italy, one of the tallest in Europe.",
    ),
    (
        "https://fresh.example.com/today",
        "Harbor news",
        TODAY,
        "The harbor of Lisbon opened a new ferry terminal for passengers crossing the Tagus river.",
    ),
]

KB = "https://kb.example.org/"  # URLs of the pages of the corpus_api fixture's index: KB + file stem


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(value: object) -> str:
    """A TOML literal for a bool, number, string or list of them."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def write_config(
    home: Path, extra: str = "", search: dict[str, object] | None = None, **server: object
) -> Path:
    """``home/config.toml``: tiny model, index ``docs`` (also the one search provider, so /search runs
    offline, unless ``search`` sets other ``[search]`` keys), a 2 s job lease, ``server`` keys, raw TOML."""
    search_keys = {"providers": ["local"], "timeout_s": 120.0, **(search or {})}
    lines = [
        f'home = "{home}"',
        "",
        "[llm]",
        'model = "tiny"',
        "max_tokens = 24",
        "",
        "[retrieval]",
        'index = "docs"',
        "",
        "[search]",
        # (timeout_s: a fresh process loads the embedder on its first search)
        *(f"{key} = {toml_value(value)}" for key, value in search_keys.items()),
        "",
        "[server]",
    ]
    for key, value in {"job_lease_s": 2.0, "job_concurrency": 1, **server}.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value}")
    path = home / "config.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def make_home(
    index_home: Path, dest: Path, extra: str = "", search: dict[str, object] | None = None, **server: object
) -> Path:
    """A fresh server home with a copy of the test index and its own config."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(index_home / "indexes", dest / "indexes")
    write_config(dest, extra, search, **server)
    return dest


def groundglass_cmd() -> list[str]:
    script = Path(sys.executable).parent / "groundglass"
    return [str(script)] if script.exists() else [sys.executable, "-m", "groundglass.cli"]


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GROUNDGLASS_MODEL"}
    env.update(
        {
            "GROUNDGLASS_HOME": str(home),
            "GROUNDGLASS_CONFIG": str(home / "config.toml"),
            "HF_HUB_OFFLINE": "1",
            "GROUNDGLASS_LOG_LEVEL": "warning",
            **extra,
        }
    )
    return env


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = child_env(home)
    proc = subprocess.run([*groundglass_cmd(), *args], env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"groundglass {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def create_key(
    home: Path, project: str, rpm: int | None = None, tpm: int | None = None, admin: bool = False
) -> str:
    """A key made the way operators make one: the CLI, whose last stdout line is the key alone."""
    args = ["keys", "create", "--project", project]
    if rpm:
        args += ["--rpm", str(rpm)]
    if tpm:
        args += ["--tpm", str(tpm)]
    if admin:
        args.append("--admin")
    out = cli(home, *args).stdout.strip().splitlines()
    assert out and out[-1].startswith("gg-"), out
    return out[-1]


@dataclass
class Server:
    home: Path
    port: int
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / f"server-{self.port}.log"

    def start(self, timeout: float = 120) -> Server:
        env = child_env(self.home, **self.env)
        out = open(self.log, "ab")  # noqa: SIM115 - the child keeps writing to it
        cmd = [*groundglass_cmd(), "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start in {timeout} s: {self.tail()}")
            time.sleep(0.2)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup runs, as in a crash."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Api:
    server: Server
    key: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def home(self) -> Path:
        return self.server.home

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


def oai(api: Api, key: str | None = None) -> openai.OpenAI:
    """The official OpenAI client on ``api`` (no retries: a test sees each answer as it is)."""
    return openai.OpenAI(base_url=api.base_url + "/v1", api_key=key or api.key, max_retries=0, timeout=180)


def pplx(api: Api) -> Perplexity:
    """The official Perplexity client on ``api``."""
    return Perplexity(base_url=api.base_url, api_key=api.key, max_retries=0, timeout=180)


def ledger_rows(home: Path, **where: object) -> list[dict[str, object]]:
    """Rows of the server's usage ledger, read straight from its database."""
    from sqlalchemy import select

    from groundglass.config import load_settings
    from groundglass.server import db

    engine = db.get_engine(load_settings(home / "config.toml", home=str(home)))
    q = select(db.usage)
    for k, v in where.items():
        q = q.where(db.usage.c[k] == v)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(db.usage.c.id))]


def send_and_leave(api: Api, path: str, body: dict[str, object], leave_after_s: float) -> None:
    """POST ``body`` to ``path`` over a raw socket and close it ``leave_after_s`` later, without reading
    anything: a client that goes away at that moment (0 s: before the response has started)."""
    from urllib.parse import urlsplit

    raw = json.dumps(body).encode()
    url = urlsplit(api.base_url)
    headers = "".join(f"{k}: {v}\r\n" for k, v in api.headers().items())
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
            + raw
        )
        time.sleep(leave_after_s)


def wait_until_idle(api: Api, timeout_s: float = 30.0) -> bool:
    """Wait until no answer runs in the server's engine (its metrics say so); whether it got there."""
    deadline = time.monotonic() + timeout_s
    while "groundglass_engine_inflight 0.0" not in httpx.get(api.base_url + "/metrics").text:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
