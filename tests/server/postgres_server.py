"""A throwaway PostgreSQL server for tests: ``initdb`` into a fresh folder, ``pg_ctl start`` on a free
127.0.0.1 port, trust authentication, no fsync (nothing here must survive a power cut).

Uses Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``) or binaries on PATH.
PostgreSQL refuses to run as root, so under root the cluster is owned by, and run as, the ``postgres``
system user (``nobody`` when there is none) through ``runuser``; its folder then lives outside pytest's
root-only temp tree, since that user must be able to reach it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
from server_helpers import free_port


def postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (the newest installed version), or None."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """One PostgreSQL cluster; ``url(db)`` is the SQLAlchemy URL of database ``db`` on it."""

    user = "gg"

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.run_as = self._unprivileged_user() if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="gg-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @staticmethod
    def _unprivileged_user() -> str:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL")

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr}{log}")

    def start(self) -> PostgresServer:
        """Create the cluster and start it."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server (again) on the same port and data."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )

    def pause(self) -> None:
        """Stop the server (clients are disconnected), keeping its data: an outage."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            self.pause()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def query(self, name: str, sql: str) -> list[tuple[object, ...]]:
        """Rows of ``sql`` on database ``name``, read with the driver alone (not through groundglass)."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=name) as conn:
            return list(conn.execute(sql).fetchall())

    def execute(self, name: str, sql: str) -> None:
        """Run ``sql`` (no result) on database ``name``."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=name) as conn:
            conn.execute(sql)
