"""Run every benchmark in turn: ``python -m bench [NAME ...]`` (NAME = the part after ``bench_``).

Each ``bench/bench_<topic>.py`` runs in its own process (``python -m bench.bench_<topic>``), so one
benchmark's memory or threads never skew the next. Exits non-zero if any of them failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    names = sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(
            f"error: unknown benchmark(s) {', '.join(unknown)}; choose from: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    failed: list[str] = []
    for name in wanted:
        print(f"\n=== bench_{name} ===", flush=True)
        started = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.bench_{name}"], cwd=here.parent)
        print(
            f"=== bench_{name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in "
            f"{time.perf_counter() - started:.0f} s ===",
            flush=True,
        )
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
