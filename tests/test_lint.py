"""The code stays ruff-clean and type-checks: part of the test command, so CI enforces it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_clean() -> None:
    done = run("ruff", "check", "bot", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_clean() -> None:
    done = run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr
