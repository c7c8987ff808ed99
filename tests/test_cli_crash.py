"""A crash in native code prints where it happened: the CLI turns on faulthandler."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_cli_reports_a_native_crash_with_the_python_stack() -> None:
    on = run(
        "import faulthandler\n"
        "from groundglass.cli import main\n"
        "try:\n    main(['config', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(faulthandler.is_enabled())"
    )
    assert on.stdout.strip().endswith("True"), on.stderr
    crash = run(
        "import ctypes\nfrom groundglass.cli import report_native_crashes\n"
        "report_native_crashes()\n\ndef native_call():\n    ctypes.string_at(0)\n\nnative_call()"
    )
    assert crash.returncode != 0
    assert "Segmentation fault" in crash.stderr and "in native_call" in crash.stderr, crash.stderr
